package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.yaml.in/yaml/v3"
)

// The decoder walks the yaml.Node tree itself instead of calling
// yaml.Decoder with KnownFields: yaml.v3's TypeError lists lines but not
// key paths ("line 12: field endpoint not found in type config.API"), it
// cannot start each list entry from that entry's defaults, and it accepts
// YAML 1.1 booleans (yes/no/on/off). An admin wants every problem with its
// path, and a strict reading.

// maxNodes bounds the work on one document: aliases can make a small file
// expand enormously ("billion laughs").
const maxNodes = 100_000

type decoder struct {
	ps      *problems
	bad     []string // paths whose value could not be decoded
	budget  int
	blown   bool
	expands map[*yaml.Node]bool // anchors being expanded, to stop alias cycles
}

// decodeDocument fills c (already holding the defaults) from data. It
// returns the paths whose values could not be decoded (rules about them
// would only repeat the problem), and ok false when data is not YAML at all.
func decodeDocument(data []byte, c *Config, ps *problems) (bad []string, ok bool) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true // an empty file: defaults only, validation says what is missing
		}
		line, msg := yamlErrorLine(err)
		ps.addAt("", line, "not valid YAML: %s", msg)
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		line := extra.Line
		if err != nil {
			line, msg := yamlErrorLine(err)
			ps.addAt("", line, "not valid YAML after the first document: %s", msg)
		} else {
			ps.addAt("", line, "the file holds more than one YAML document (a second \"---\"); hvro reads one")
		}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, true
		}
		root = root.Content[0]
	}
	d := &decoder{ps: ps, budget: maxNodes, expands: map[*yaml.Node]bool{}}
	d.value(root, reflect.ValueOf(c).Elem(), "")
	return d.bad, !d.blown
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlErrorLine splits "yaml: line 3: did not find ..." into 3 and the rest.
func yamlErrorLine(err error) (int, string) {
	msg := err.Error()
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return line, m[2]
	}
	return 0, strings.TrimPrefix(msg, "yaml: ")
}

// badValue reports that the value at path could not be decoded.
func (d *decoder) badValue(path string, line int, format string, args ...any) {
	d.bad = append(d.bad, path)
	d.ps.addAt(path, line, format, args...)
}

// spend takes k from the work budget; false once it is gone.
func (d *decoder) spend(k int, path string, line int) bool {
	d.budget -= k
	if d.budget < 0 {
		if !d.blown {
			d.blown = true
			d.ps.addAt(path, line, "the document is too large or uses too many aliases (more than %d values)", maxNodes)
		}
		return false
	}
	return true
}

// resolve follows an alias; ok is false for a cycle or a blown budget.
// The caller marks the node it got as being expanded (enter).
func (d *decoder) resolve(n *yaml.Node, path string) (*yaml.Node, bool) {
	if !d.spend(1, path, n.Line) {
		return nil, false
	}
	if n.Kind != yaml.AliasNode {
		return n, true
	}
	if n.Alias == nil {
		d.badValue(path, n.Line, "alias %s refers to nothing", quote("*"+n.Value))
		return nil, false
	}
	if d.expands[n.Alias] {
		d.badValue(path, n.Line, "alias %s refers to a value that contains it", quote("*"+n.Value))
		return nil, false
	}
	return n.Alias, true
}

// enter marks an anchored node as being expanded until the returned
// function runs, so an alias inside it that points back is a cycle.
func (d *decoder) enter(n *yaml.Node) func() {
	if n.Anchor == "" || d.expands[n] {
		return func() {}
	}
	d.expands[n] = true
	return func() { delete(d.expands, n) }
}

var durationType = reflect.TypeFor[time.Duration]()

// value decodes n into v at path. A null leaves v as it was (the default).
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n, ok := d.resolve(n, path)
	if !ok {
		return
	}
	defer d.enter(n)()
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	case v.Kind() == reflect.Map:
		d.dict(n, v, path)
	case v.Kind() == reflect.String:
		if s, ok := d.scalar(n, path, "a string"); ok {
			if tag := n.ShortTag(); tag == "!!binary" || !strings.HasPrefix(tag, "!!") {
				d.badValue(path, n.Line, "tag %s is not supported here; write a plain string", tag)
				return
			}
			v.SetString(s)
		}
	case v.Kind() == reflect.Int:
		if s, ok := d.scalar(n, path, "a whole number"); ok {
			var i int64
			if n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
				if _, err := strconv.Atoi(s); err == nil && n.ShortTag() == "!!str" {
					d.badValue(path, n.Line, "%s is quoted; write the number without quotes", quote(s))
					return
				}
				d.badValue(path, n.Line, "%s is not a whole number", quote(s))
				return
			}
			v.SetInt(i)
		}
	case v.Kind() == reflect.Bool:
		if s, ok := d.scalar(n, path, "true or false"); ok {
			var b bool
			// YAML 1.1's yes/no/on/off are refused: "no" as a country
			// code or a host name must not turn into false.
			if n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
				if s == "true" || s == "false" {
					d.badValue(path, n.Line, "%s is quoted; write %s without quotes", quote(s), s)
					return
				}
				d.badValue(path, n.Line, "%s is not true or false", quote(s))
				return
			}
			v.SetBool(b)
		}
	default:
		panic(fmt.Sprintf("config: no decoder for %s at %s", v.Type(), path))
	}
}

// scalar returns n's text, or reports that n is not a scalar.
func (d *decoder) scalar(n *yaml.Node, path, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		d.badValue(path, n.Line, "expected %s, got %s", want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping (key: value)"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return quote(n.Value)
	}
	return "nothing"
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	s, ok := d.scalar(n, path, `a duration such as "30s"`)
	if !ok {
		return
	}
	switch tag := n.ShortTag(); tag {
	case "!!int", "!!float":
		d.badValue(path, n.Line, "%s has no unit; write a Go duration such as %q", s, s+"s")
		return
	case "!!str":
	default:
		d.badValue(path, n.Line, "%s is not a duration; write a Go duration such as \"90s\", \"5m\" or \"1h\"", quote(s))
		return
	}
	dur, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		d.badValue(path, n.Line, "%s is not a Go duration such as \"90s\", \"5m\" or \"1h\"", quote(s))
		return
	}
	v.SetInt(int64(dur))
}

// entry is one key: value of a mapping, after merge keys ("<<") are expanded.
type entry struct{ key, val *yaml.Node }

// entries lists the pairs of mapping n: merged ones first, then n's own,
// so n's keys win; a merged key that n repeats is dropped (a merge is
// shallow in YAML). Duplicate own keys are reported.
func (d *decoder) entries(n *yaml.Node, path string) []entry {
	if !d.spend(len(n.Content)/2, path, n.Line) {
		return nil
	}
	var merged, own []entry
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merged = append(merged, d.merge(val, path)...)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			d.ps.addAt(path, k.Line, "a key must be a plain name, not %s", kindName(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.ps.addAt(fieldPath(path, k.Value), k.Line, "key %s appears twice (first on line %d)", quote(k.Value), first)
			continue
		}
		seen[k.Value] = k.Line
		own = append(own, entry{k, val})
	}
	out := merged[:0:0]
	for _, e := range merged {
		if _, over := seen[e.key.Value]; !over {
			seen[e.key.Value] = e.key.Line
			out = append(out, e)
		}
	}
	return append(out, own...)
}

// merge expands the value of a "<<" key: a mapping or a list of them.
func (d *decoder) merge(val *yaml.Node, path string) []entry {
	val, ok := d.resolve(val, path)
	if !ok {
		return nil
	}
	defer d.enter(val)()
	switch val.Kind {
	case yaml.MappingNode:
		return d.entries(val, path)
	case yaml.SequenceNode:
		var all []entry
		for _, item := range val.Content {
			all = append(all, d.merge(item, path)...)
		}
		return all
	}
	d.ps.addAt(path, val.Line, "<< merges a mapping or a list of mappings, not %s", kindName(val))
	return nil
}

// fields maps a struct's yaml names to field indexes; yaml:"-" is skipped.
var fieldCache sync.Map // reflect.Type -> map[string]int

func yamlFields(t reflect.Type) map[string]int {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]int)
	}
	m := map[string]int{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		m[name] = i
	}
	fieldCache.Store(t, m)
	return m
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.badValue(path, n.Line, "expected a mapping (key: value), got %s", kindName(n))
		return
	}
	fields := yamlFields(v.Type())
	for _, e := range d.entries(n, path) {
		fp := fieldPath(path, e.key.Value)
		i, ok := fields[e.key.Value]
		if !ok {
			if _, secret := fields[e.key.Value+"_file"]; secret {
				d.ps.addAt(fp, e.key.Line, "unknown key %s: secrets are never inline; use %s_file or %s_env", quote(e.key.Value), e.key.Value, e.key.Value)
				continue
			}
			d.ps.addAt(fp, e.key.Line, "unknown key %s%s", quote(e.key.Value), suggest(e.key.Value, fields))
			continue
		}
		d.ps.lines[fp] = e.key.Line
		d.value(e.val, v.Field(i), fp)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.badValue(path, n.Line, "expected a list, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		v.Set(reflect.Zero(v.Type())) // "[]" and no key mean the same: nil
		return
	}
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content))
	for i, item := range n.Content {
		ip := indexPath(path, i)
		d.ps.lines[ip] = item.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		elem.Set(template(elem.Type()))
		d.value(item, elem, ip)
		out = reflect.Append(out, elem)
	}
	v.Set(out)
}

// template is the value a new list or map entry starts from.
func template(t reflect.Type) reflect.Value {
	switch t {
	case reflect.TypeFor[Cluster]():
		return reflect.ValueOf(DefaultCluster())
	case reflect.TypeFor[Pair]():
		return reflect.ValueOf(DefaultPair())
	}
	return reflect.Zero(t)
}

func (d *decoder) dict(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.badValue(path, n.Line, "expected a mapping (name: value), got %s", kindName(n))
		return
	}
	entries := d.entries(n, path)
	if len(entries) == 0 {
		return // "{}" and no key mean the same: nil
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	for _, e := range entries {
		kp := fieldPath(path, e.key.Value)
		d.ps.lines[kp] = e.key.Line
		elem := reflect.New(v.Type().Elem()).Elem()
		elem.Set(template(elem.Type()))
		d.value(e.val, elem, kp)
		v.SetMapIndex(reflect.ValueOf(e.key.Value), elem)
	}
}

// suggest names the closest known key, or lists them all.
func suggest(key string, fields map[string]int) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	best, bestDist := "", 3
	for _, name := range names {
		if dist := editDistance(strings.ToLower(key), name); dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known keys: " + strings.Join(names, ", ")
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
