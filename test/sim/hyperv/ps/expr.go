package ps

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// typeAccelerators maps the short names the subset accepts in [type] to
// .NET type names.
var typeAccelerators = map[string]string{
	"string": "System.String", "int": "System.Int32", "int32": "System.Int32", "long": "System.Int64",
	"int64": "System.Int64", "bool": "System.Boolean", "boolean": "System.Boolean", "double": "System.Double",
	"pscustomobject": "System.Management.Automation.PSObject", "psobject": "System.Management.Automation.PSObject",
	"ordered": "ordered", "hashtable": "System.Collections.Hashtable", "array": "System.Array",
	"object": "System.Object", "object[]": "System.Object[]", "string[]": "System.String[]",
	"datetime": "System.DateTime", "guid": "System.Guid", "void": "System.Void",
	"scriptblock": "System.Management.Automation.ScriptBlock",
	"exception":   "System.Exception",
}

// exceptionParents is the part of the .NET exception hierarchy scripts can
// name in catch [T] clauses.
var exceptionParents = map[string]string{
	"System.Exception":                                                 "",
	"System.SystemException":                                           "System.Exception",
	"System.Management.Automation.RuntimeException":                    "System.SystemException",
	"System.Management.Automation.ParameterBindingException":           "System.Management.Automation.RuntimeException",
	"System.Management.Automation.CommandNotFoundException":            "System.Management.Automation.RuntimeException",
	"System.Management.Automation.ActionPreferenceStopException":       "System.Management.Automation.RuntimeException",
	"System.Management.Automation.ParseException":                      "System.Management.Automation.RuntimeException",
	"System.Management.Automation.MethodInvocationException":           "System.Management.Automation.RuntimeException",
	"System.Management.Automation.Host.HostException":                  "System.Management.Automation.RuntimeException",
	"System.Management.Automation.PSInvalidCastException":              "System.Management.Automation.RuntimeException",
	"Microsoft.PowerShell.Commands.WriteErrorException":                "System.SystemException",
	"System.ArgumentException":                                         "System.SystemException",
	"System.InvalidOperationException":                                 "System.SystemException",
	"System.Management.Automation.PSArgumentException":                 "System.ArgumentException",
	"System.Management.Automation.ItemNotFoundException":               "System.Management.Automation.RuntimeException",
	"System.Management.Automation.PSNotSupportedException":             "System.Management.Automation.RuntimeException",
	"System.Management.Automation.PipelineStoppedException":            "System.Management.Automation.RuntimeException",
	"System.Management.Automation.ValidationMetadataException":         "System.Management.Automation.RuntimeException",
	"System.Management.Automation.ParameterBindingValidationException": "System.Management.Automation.ParameterBindingException",
}

// AddException registers an exception type and its base for catch [T].
func (t *CommandTable) AddException(name, parent string) {
	if t.exceptions == nil {
		t.exceptions = map[string]string{}
	}
	t.exceptions[name] = parent
}

// AddType registers an object type name so [T] and -is [T] resolve.
func (t *CommandTable) AddType(name string) {
	if t.types == nil {
		t.types = map[string]bool{}
	}
	t.types[strings.ToLower(name)] = true
}

// AddEnum registers an enum type for casts and comparisons.
func (t *CommandTable) AddEnum(e *EnumType) {
	if t.enums == nil {
		t.enums = map[string]*EnumType{}
	}
	t.enums[strings.ToLower(e.Name)] = e
}

func (in *interp) exceptionParent(name string) (string, bool) {
	for k, v := range exceptionParents {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	for k, v := range in.cmds.exceptions {
		if strings.EqualFold(k, name) {
			return v, true
		}
	}
	return "", false
}

func canonicalTypeName(name string) string {
	if full, ok := typeAccelerators[strings.ToLower(name)]; ok {
		return full
	}
	return name
}

func (in *interp) knownType(name string) bool {
	n := canonicalTypeName(name)
	for _, cand := range []string{n, "System." + n} {
		if _, ok := in.exceptionParent(cand); ok {
			return true
		}
		if in.cmds.types[strings.ToLower(cand)] {
			return true
		}
		if _, ok := in.cmds.enums[strings.ToLower(cand)]; ok {
			return true
		}
		for _, v := range typeAccelerators {
			if strings.EqualFold(v, cand) {
				return true
			}
		}
	}
	return false
}

// exceptionIs reports whether exception type actual is want or derives from
// it; extra holds the exception types cmdlets registered.
func exceptionIs(extra map[string]string, actual, want string) bool {
	want = canonicalTypeName(want)
	for t, depth := actual, 0; t != "" && depth < 16; depth++ {
		if strings.EqualFold(t, want) || strings.EqualFold(t, "System."+want) {
			return true
		}
		next := ""
		found := false
		for k, v := range exceptionParents {
			if strings.EqualFold(k, t) {
				next, found = v, true
			}
		}
		for k, v := range extra {
			if strings.EqualFold(k, t) {
				next, found = v, true
			}
		}
		if !found {
			next = ""
			if !strings.EqualFold(t, "System.Exception") {
				next = "System.Exception"
			}
		}
		t = next
	}
	return false
}

func (in *interp) eval(x Expr) (Value, error) {
	switch e := x.(type) {
	case *StringLit:
		return e.Value, nil
	case *NumberLit:
		return e.Value, nil
	case *ExpandString:
		var b strings.Builder
		for _, part := range e.Parts {
			if part.X == nil {
				b.WriteString(part.Text)
				continue
			}
			v, err := in.eval(part.X)
			if err != nil {
				return nil, err
			}
			b.WriteString(in.expandText(v))
		}
		return b.String(), nil
	case *VarExpr:
		return in.lookup(e), nil
	case *SubExpr:
		out, err := in.execList(e.Body, nil)
		if err != nil {
			return nil, err
		}
		return collapse(out), nil
	case *ArraySubExpr:
		out, err := in.execList(e.Body, nil)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = []Value{}
		}
		return out, nil
	case *ParenExpr:
		return in.stmtValue(e.Body)
	case *HashLit:
		h := NewHashtable()
		for _, ent := range e.Entries {
			k, err := in.eval(ent.Key)
			if err != nil {
				return nil, err
			}
			val, err := in.stmtValue(ent.Value)
			if err != nil {
				return nil, err
			}
			key := ToString(k)
			if h.Has(key) {
				return nil, runtimeError(e.Extent, "DuplicateKeyInHashLiteral", "ParserError", "Duplicate keys '%s' are not allowed in hash literals.", key)
			}
			h.Set(key, val)
		}
		return h, nil
	case *ScriptBlockExpr:
		return &ScriptBlock{Body: e.Body, Text: e.Text}, nil
	case *ArrayLit:
		out := make([]Value, 0, len(e.Elems))
		for _, el := range e.Elems {
			v, err := in.eval(el)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case *BinaryExpr:
		return in.binary(e)
	case *UnaryExpr:
		return in.unary(e)
	case *CastExpr:
		if e.Type == "ordered" || strings.EqualFold(e.Type, "ordered") {
			if _, ok := e.X.(*HashLit); !ok {
				return nil, runtimeError(e.Extent, "OrderedAttributeOnlyOnHashLiteralNode", "ParserError", "The ordered attribute can be specified only on a hash literal node.")
			}
		}
		v, err := in.eval(e.X)
		if err != nil {
			return nil, err
		}
		return in.cast(e.Type, v, e.Extent)
	case *TypeExpr:
		if !in.knownType(e.Type) {
			return nil, runtimeError(e.Extent, "TypeNotFound", "InvalidOperation", "Unable to find type [%s].", e.Type)
		}
		return &TypeValue{Name: canonicalTypeName(e.Type)}, nil
	case *MemberExpr:
		if e.Static {
			return in.staticMember(e)
		}
		v, err := in.eval(e.X)
		if err != nil {
			return nil, err
		}
		m, _ := member(v, e.Name)
		return m, nil
	case *InvokeExpr:
		return in.invokeMethod(e)
	case *IndexExpr:
		return in.index(e)
	}
	return nil, fmt.Errorf("ps: unknown expression %T", x)
}

func (in *interp) expandText(v Value) string {
	if arr, ok := v.([]Value); ok {
		parts := make([]string, len(arr))
		for i, e := range arr {
			parts[i] = ToString(e)
		}
		return strings.Join(parts, ToString(in.vars["ofs"]))
	}
	return ToString(v)
}

func (in *interp) lookup(e *VarExpr) Value {
	name := strings.ToLower(e.Name)
	if e.Drive == "env" {
		if v, ok := in.env[name]; ok {
			return v
		}
		return nil
	}
	switch name {
	case "true":
		return true
	case "false":
		return false
	case "null":
		return nil
	case "?":
		return in.lastOK
	case "error":
		return append([]Value{}, in.errList...)
	case "psversiontable":
		h := NewHashtable()
		v := NewObject("System.Version")
		v.Text = "5.1.17763.1"
		v.Set("Major", int64(5)).Set("Minor", int64(1)).Set("Build", int64(17763)).Set("Revision", int64(1))
		h.Set("PSVersion", v)
		h.Set("PSEdition", "Desktop")
		return h
	}
	return in.vars[name]
}

func (in *interp) unary(e *UnaryExpr) (Value, error) {
	v, err := in.eval(e.X)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case "-not":
		return !IsTrue(v), nil
	case "-bnot":
		n, err := toInt(v)
		if err != nil {
			return nil, runtimeError(e.Extent, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
		}
		return ^n, nil
	case "-join":
		return joinValues(v, ""), nil
	case "-split":
		return splitValue(ToString(v), `\s+`, true)
	case "-", "+":
		n, err := toNumber(v)
		if err != nil {
			return nil, runtimeError(e.Extent, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
		}
		if e.Op == "+" {
			return n, nil
		}
		switch x := n.(type) {
		case int64:
			return -x, nil
		case float64:
			return -x, nil
		}
	}
	return nil, runtimeError(e.Extent, "UnknownOperator", "InvalidOperation", "Unsupported operator %s.", e.Op)
}

func joinValues(v Value, sep string) string {
	items := AsList(v)
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = ToString(it)
	}
	return strings.Join(parts, sep)
}

func splitValue(s, pattern string, dropEmpty bool) (Value, error) {
	re, err := regexp.Compile("(?i)" + pattern)
	if err != nil {
		return nil, err
	}
	parts := re.Split(s, -1)
	out := []Value{}
	for _, p := range parts {
		if dropEmpty && p == "" {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

func (in *interp) binary(e *BinaryExpr) (Value, error) {
	switch e.Op {
	case "-and", "-or":
		l, err := in.eval(e.L)
		if err != nil {
			return nil, err
		}
		lt := IsTrue(l)
		if e.Op == "-and" && !lt || e.Op == "-or" && lt {
			return lt, nil
		}
		r, err := in.eval(e.R)
		if err != nil {
			return nil, err
		}
		return IsTrue(r), nil
	}
	l, err := in.eval(e.L)
	if err != nil {
		return nil, err
	}
	r, err := in.eval(e.R)
	if err != nil {
		return nil, err
	}
	switch e.Op {
	case "-xor":
		return IsTrue(l) != IsTrue(r), nil
	case "+", "-", "*", "/", "%":
		return in.arith(e.Op, l, r, e.Extent)
	case "..":
		a, err1 := toInt(l)
		b, err2 := toInt(r)
		if err1 != nil || err2 != nil {
			return nil, runtimeError(e.Extent, "InvalidCastFromStringToInteger", "InvalidArgument", "Cannot convert value to type \"System.Int32\".")
		}
		n := b - a
		if n < 0 {
			n = -n
		}
		if n > 1_000_000 {
			return nil, runtimeError(e.Extent, "RangeTooLarge", "InvalidOperation", "The range %d..%d is larger than the emulator allows.", a, b)
		}
		in.steps += int(n)
		if err := in.step(); err != nil {
			return nil, err
		}
		out := make([]Value, 0, n+1)
		step := int64(1)
		if b < a {
			step = -1
		}
		for i := a; ; i += step {
			out = append(out, i)
			if i == b {
				break
			}
		}
		return out, nil
	case "-f":
		return formatOperator(ToString(l), AsList(r), e.Extent)
	case "-join":
		return joinValues(l, ToString(r)), nil
	case "-split":
		return splitValue(ToString(l), ToString(r), false)
	case "-replace":
		args := AsList(r)
		pat, repl := "", ""
		if len(args) > 0 {
			pat = ToString(args[0])
		}
		if len(args) > 1 {
			repl = ToString(args[1])
		}
		flags := "(?i)"
		if e.CaseOp {
			flags = ""
		}
		re, err := regexp.Compile(flags + pat)
		if err != nil {
			return nil, runtimeError(e.Extent, "InvalidRegularExpression", "InvalidOperation", "The regular expression pattern %s is not valid.", pat)
		}
		repl = regexp.MustCompile(`\$(\d+)`).ReplaceAllString(repl, "$${$1}")
		replace := func(s string) string { return re.ReplaceAllString(s, repl) }
		if arr, ok := l.([]Value); ok {
			out := make([]Value, len(arr))
			for i, it := range arr {
				out[i] = replace(ToString(it))
			}
			return out, nil
		}
		return replace(ToString(l)), nil
	case "-is", "-isnot":
		tv, ok := r.(*TypeValue)
		if !ok {
			return nil, runtimeError(e.Extent, "IsOperatorRequiresType", "InvalidOperation", "The right operand of '-is' must be a type.")
		}
		is := valueIs(l, tv.Name)
		if e.Op == "-isnot" {
			return !is, nil
		}
		return is, nil
	case "-as":
		name := ToString(r)
		if tv, ok := r.(*TypeValue); ok {
			name = tv.Name
		}
		v, err := in.cast(name, l, e.Extent)
		if err != nil {
			return nil, nil
		}
		return v, nil
	case "-band", "-bor", "-bxor", "-shl", "-shr":
		a, err1 := toInt(l)
		b, err2 := toInt(r)
		if err1 != nil || err2 != nil {
			return nil, runtimeError(e.Extent, "InvalidCastFromStringToInteger", "InvalidArgument", "Cannot convert value to type \"System.Int32\".")
		}
		switch e.Op {
		case "-band":
			return a & b, nil
		case "-bor":
			return a | b, nil
		case "-bxor":
			return a ^ b, nil
		case "-shl":
			return a << uint(b&63), nil
		default:
			return a >> uint(b&63), nil
		}
	}
	return in.compare(e, l, r)
}

func (in *interp) arith(op string, l, r Value, ext Extent) (Value, error) {
	switch x := l.(type) {
	case nil:
		if op == "+" {
			return r, nil
		}
		l = int64(0)
	case string:
		switch op {
		case "+":
			return x + ToString(r), nil
		case "*":
			n, err := toInt(r)
			if err != nil || n < 0 || n*int64(len(x)) > 10_000_000 {
				return nil, runtimeError(ext, "InvalidCastFromStringToInteger", "InvalidArgument", "Cannot multiply the string by %s.", ToString(r))
			}
			return strings.Repeat(x, int(n)), nil
		}
		n, err := toNumber(x)
		if err != nil {
			return nil, runtimeError(ext, "MethodNotFound", "InvalidOperation", "Method invocation failed because [System.String] does not contain a method named 'op_%s'.", opName(op))
		}
		l = n
	case []Value:
		switch op {
		case "+":
			out := append(append([]Value{}, x...), AsList(r)...)
			if r == nil {
				out = append(append([]Value{}, x...), nil)
			}
			return out, nil
		case "*":
			n, err := toInt(r)
			if err != nil || n < 0 || n*int64(len(x)) > 1_000_000 {
				return nil, runtimeError(ext, "InvalidCastFromStringToInteger", "InvalidArgument", "Cannot multiply the array by %s.", ToString(r))
			}
			var out []Value
			for i := int64(0); i < n; i++ {
				out = append(out, x...)
			}
			return out, nil
		}
		return nil, runtimeError(ext, "OperatorFailed", "InvalidOperation", "Method invocation failed because [System.Object[]] does not contain a method named 'op_%s'.", opName(op))
	case *Hashtable:
		if op == "+" {
			rh, ok := r.(*Hashtable)
			if !ok {
				return nil, runtimeError(ext, "AddHashTableToNonHashTable", "InvalidOperation", "A hash table can only be added to another hash table.")
			}
			out := NewHashtable()
			for _, k := range x.Keys() {
				v, _ := x.Get(k)
				out.Set(k, v)
			}
			for _, k := range rh.Keys() {
				if out.Has(k) {
					return nil, runtimeError(ext, "DuplicateKeyInHashLiteral", "InvalidOperation", "Item has already been added. Key in dictionary: '%s'  Key being added: '%s'", k, k)
				}
				v, _ := rh.Get(k)
				out.Set(k, v)
			}
			return out, nil
		}
	}
	a, err := toNumber(l)
	if err != nil {
		return nil, runtimeError(ext, "MethodNotFound", "InvalidOperation", "Method invocation failed because [%s] does not contain a method named 'op_%s'.", TypeNameOf(l), opName(op))
	}
	b, err := toNumber(r)
	if err != nil {
		return nil, runtimeError(ext, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
	}
	ai, aInt := a.(int64)
	bi, bInt := b.(int64)
	if aInt && bInt {
		switch op {
		case "+":
			if s := ai + bi; (s > ai) == (bi > 0) {
				return s, nil
			}
		case "-":
			if s := ai - bi; (s < ai) == (bi > 0) {
				return s, nil
			}
		case "*":
			if ai == 0 || bi == 0 {
				return int64(0), nil
			}
			if p := ai * bi; p/bi == ai {
				return p, nil
			}
		case "/":
			if bi == 0 {
				return nil, runtimeError(ext, "RuntimeException", "NotSpecified", "Attempted to divide by zero.")
			}
			if ai%bi == 0 {
				return ai / bi, nil
			}
		case "%":
			if bi == 0 {
				return nil, runtimeError(ext, "RuntimeException", "NotSpecified", "Attempted to divide by zero.")
			}
			return ai % bi, nil
		}
	}
	af, bf := toFloat(a), toFloat(b)
	switch op {
	case "+":
		return af + bf, nil
	case "-":
		return af - bf, nil
	case "*":
		return af * bf, nil
	case "/":
		if bf == 0 {
			return nil, runtimeError(ext, "RuntimeException", "NotSpecified", "Attempted to divide by zero.")
		}
		return af / bf, nil
	}
	return math.Mod(af, bf), nil
}

func opName(op string) string {
	switch op {
	case "+":
		return "Addition"
	case "-":
		return "Subtraction"
	case "*":
		return "Multiply"
	case "/":
		return "Division"
	}
	return "Modulus"
}

func toFloat(v Value) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// compare implements the comparison operators, filtering when the left
// operand is an array.
func (in *interp) compare(e *BinaryExpr, l, r Value) (Value, error) {
	switch e.Op {
	case "-contains", "-notcontains", "-in", "-notin":
		coll, item := l, r
		if e.Op == "-in" || e.Op == "-notin" {
			coll, item = r, l
		}
		found := false
		for _, c := range AsList(coll) {
			ok, err := in.compareOne("-eq", c, item, e.CaseOp, e.Extent)
			if err != nil {
				return nil, err
			}
			if ok {
				found = true
				break
			}
		}
		if e.Op == "-notcontains" || e.Op == "-notin" {
			return !found, nil
		}
		return found, nil
	}
	if arr, ok := l.([]Value); ok {
		out := []Value{}
		for _, it := range arr {
			ok, err := in.compareOne(e.Op, it, r, e.CaseOp, e.Extent)
			if err != nil {
				return nil, err
			}
			if ok {
				out = append(out, it)
			}
		}
		return out, nil
	}
	return in.compareOne(e.Op, l, r, e.CaseOp, e.Extent)
}

func (in *interp) compareOne(op string, l, r Value, cs bool, ext Extent) (bool, error) {
	switch op {
	case "-like", "-notlike":
		m := wildcardMatch(ToString(r), ToString(l), cs)
		return m == (op == "-like"), nil
	case "-match", "-notmatch":
		flags := "(?i)"
		if cs {
			flags = ""
		}
		re, err := regexp.Compile(flags + ToString(r))
		if err != nil {
			return false, runtimeError(ext, "InvalidRegularExpression", "InvalidOperation", "The regular expression pattern %s is not valid.", ToString(r))
		}
		m := re.FindStringSubmatch(ToString(l))
		if m != nil {
			h := NewHashtable()
			for i, g := range m {
				h.Set(strconv.Itoa(i), g)
			}
			in.vars["matches"] = h
		}
		return (m != nil) == (op == "-match"), nil
	}
	c, comparable, err := in.order(l, r, cs, ext)
	if err != nil {
		return false, err
	}
	switch op {
	case "-eq":
		return comparable && c == 0, nil
	case "-ne":
		return !comparable || c != 0, nil
	}
	if !comparable {
		return false, runtimeError(ext, "NotIcomparable", "InvalidOperation", "Cannot compare \"%s\" because it is not IComparable.", ToString(l))
	}
	switch op {
	case "-gt":
		return c > 0, nil
	case "-ge":
		return c >= 0, nil
	case "-lt":
		return c < 0, nil
	case "-le":
		return c <= 0, nil
	}
	return false, runtimeError(ext, "UnknownOperator", "InvalidOperation", "Unsupported operator %s.", op)
}

// order compares l and r after converting r to l's type, as PowerShell does.
// comparable is false when equality is simply false (different kinds).
func (in *interp) order(l, r Value, cs bool, ext Extent) (int, bool, error) {
	cmpStr := func(a, b string) int {
		if !cs {
			a, b = strings.ToLower(a), strings.ToLower(b)
		}
		return strings.Compare(a, b)
	}
	switch x := l.(type) {
	case nil:
		if r == nil {
			return 0, true, nil
		}
		return -1, false, nil
	case string:
		if r == nil {
			return 1, false, nil
		}
		return cmpStr(x, ToString(r)), true, nil
	case bool:
		b := IsTrue(r)
		switch {
		case x == b:
			return 0, true, nil
		case !x:
			return -1, true, nil
		}
		return 1, true, nil
	case int64, float64:
		if r == nil {
			return 1, false, nil
		}
		n, err := toNumber(r)
		if err != nil {
			return 0, false, nil
		}
		a, b := toFloat(x), toFloat(n)
		ai, aok := x.(int64)
		bi, bok := n.(int64)
		switch {
		case aok && bok:
			return cmpInt(ai, bi), true, nil
		case a < b:
			return -1, true, nil
		case a > b:
			return 1, true, nil
		}
		return 0, true, nil
	case Enum:
		if r == nil {
			return 1, false, nil
		}
		t := in.cmds.enums[strings.ToLower(x.Type)]
		var rv Enum
		if t != nil {
			var err error
			rv, err = t.Parse(r)
			if err != nil {
				return 0, false, runtimeError(ext, "RuntimeException", "InvalidOperation", "Cannot convert value \"%s\" to type \"%s\". Error: \"%s\"", ToString(r), x.Type, err.Error())
			}
		} else {
			if re, ok := r.(Enum); ok {
				rv = re
			} else if n, err := toInt(r); err == nil {
				rv = Enum{Value: n}
			} else {
				return cmpStr(x.Name, ToString(r)), true, nil
			}
		}
		return cmpInt(x.Value, rv.Value), true, nil
	case Guid:
		return cmpStr(string(x), ToString(r)), true, nil
	case time.Time:
		rt, ok := r.(time.Time)
		if !ok {
			return 0, false, nil
		}
		return x.Compare(rt), true, nil
	}
	if l == r {
		return 0, true, nil
	}
	return 0, false, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// wildcardMatch implements -like: * ? and [abc], with ` as the escape.
func wildcardMatch(pattern, s string, cs bool) bool {
	var b strings.Builder
	if !cs {
		b.WriteString("(?is)")
	} else {
		b.WriteString("(?s)")
	}
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		c := pattern[i]
		switch c {
		case '*':
			b.WriteString(".*")
		case '?':
			b.WriteString(".")
		case '[':
			j := strings.IndexByte(pattern[i:], ']')
			if j < 0 {
				b.WriteString(regexp.QuoteMeta("["))
				continue
			}
			b.WriteString("[" + strings.ReplaceAll(regexp.QuoteMeta(pattern[i+1:i+j]), `\-`, "-") + "]")
			i += j
		case '`':
			if i+1 < len(pattern) {
				i++
				b.WriteString(regexp.QuoteMeta(string(pattern[i])))
			}
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	re, err := regexp.Compile(b.String())
	return err == nil && re.MatchString(s)
}

func valueIs(v Value, typeName string) bool {
	t := strings.ToLower(canonicalTypeName(typeName))
	switch t {
	case "system.object":
		return v != nil
	case "system.management.automation.psobject":
		return v != nil
	case "system.array", "system.object[]":
		_, ok := v.([]Value)
		return ok
	}
	if v == nil {
		return false
	}
	if o, ok := v.(*Object); ok {
		for _, tn := range o.TypeNames {
			if strings.EqualFold(tn, typeName) || strings.EqualFold(tn, canonicalTypeName(typeName)) {
				return true
			}
		}
		return false
	}
	if _, ok := v.(*ErrorRecord); ok {
		return t == "system.management.automation.errorrecord" || t == "errorrecord"
	}
	actual := strings.ToLower(TypeNameOf(v))
	if t == "system.int32" || t == "system.int64" {
		_, ok := v.(int64)
		if !ok {
			return false
		}
		return actual == t || t == "system.int64" && actual == "system.int32"
	}
	return actual == t
}

// cast implements [type]value.
func (in *interp) cast(typeName string, v Value, ext Extent) (Value, error) {
	t := strings.ToLower(canonicalTypeName(typeName))
	convErr := func(target, detail string) error {
		r := NewError("System.Management.Automation.PSInvalidCastException",
			fmt.Sprintf("Cannot convert value \"%s\" to type \"%s\". Error: \"%s\"", ToString(v), target, detail),
			"InvalidCastFromStringToInteger", "InvalidArgument", nil)
		r.setExtent(ext)
		return &psError{rec: r, kind: stmtTerminating}
	}
	switch t {
	case "system.string":
		if v == nil {
			return "", nil
		}
		return in.expandText(v), nil
	case "system.int32", "system.int64":
		n, err := toInt(v)
		if err != nil {
			return nil, convErr(canonicalTypeName(typeName), "Input string was not in a correct format.")
		}
		return n, nil
	case "system.double":
		n, err := toNumber(v)
		if err != nil {
			return nil, convErr("System.Double", "Input string was not in a correct format.")
		}
		return toFloat(n), nil
	case "system.boolean":
		return IsTrue(v), nil
	case "system.management.automation.psobject":
		if h, ok := v.(*Hashtable); ok {
			o := NewPSObject()
			for _, k := range h.Keys() {
				val, _ := h.Get(k)
				o.Set(k, val)
			}
			return o, nil
		}
		return v, nil
	case "ordered":
		h, ok := v.(*Hashtable)
		if !ok {
			return nil, runtimeError(ext, "OrderedAttributeOnlyOnHashLiteralNode", "ParserError", "The ordered attribute can be specified only on a hash literal node.")
		}
		h.Ordered = true
		return h, nil
	case "system.collections.hashtable":
		if h, ok := v.(*Hashtable); ok {
			return h, nil
		}
	case "system.array", "system.object[]":
		if v == nil {
			return []Value{}, nil
		}
		return append([]Value{}, AsList(v)...), nil
	case "system.string[]":
		items := AsList(v)
		out := make([]Value, len(items))
		for i, it := range items {
			out[i] = ToString(it)
		}
		return out, nil
	case "system.object":
		return v, nil
	case "system.void":
		return voidValue{}, nil
	case "system.guid":
		s := strings.Trim(strings.TrimSpace(ToString(v)), "{}")
		if !guidRE.MatchString(s) {
			return nil, convErr("System.Guid", "Guid should contain 32 digits with 4 dashes (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).")
		}
		return Guid(strings.ToLower(s)), nil
	case "system.datetime":
		if tm, ok := v.(time.Time); ok {
			return tm, nil
		}
		s := ToString(v)
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "1/2/2006 3:04:05 PM", "1/2/2006"} {
			if tm, err := time.Parse(layout, s); err == nil {
				return tm, nil
			}
		}
		return nil, convErr("System.DateTime", "String was not recognized as a valid DateTime.")
	}
	if et, ok := in.cmds.enums[t]; ok {
		e, err := et.Parse(v)
		if err != nil {
			return nil, convErr(et.Name, err.Error())
		}
		return e, nil
	}
	if !in.knownType(typeName) {
		return nil, runtimeError(ext, "TypeNotFound", "InvalidOperation", "Unable to find type [%s].", typeName)
	}
	if valueIs(v, typeName) {
		return v, nil
	}
	r := NewError("System.Management.Automation.PSInvalidCastException",
		fmt.Sprintf("Cannot convert the \"%s\" value of type \"%s\" to type \"%s\".", ToString(v), TypeNameOf(v), canonicalTypeName(typeName)),
		"ConvertToFinalInvalidCastException", "InvalidArgument", nil)
	r.setExtent(ext)
	return nil, &psError{rec: r, kind: stmtTerminating}
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

func (in *interp) index(e *IndexExpr) (Value, error) {
	v, err := in.eval(e.X)
	if err != nil {
		return nil, err
	}
	idx, err := in.eval(e.Index)
	if err != nil {
		return nil, err
	}
	if keys, ok := idx.([]Value); ok {
		var out []Value
		for _, k := range keys {
			r, err := indexOne(v, k, e.Extent)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, nil
	}
	return indexOne(v, idx, e.Extent)
}

func indexOne(v, idx Value, ext Extent) (Value, error) {
	switch x := v.(type) {
	case nil:
		return nil, runtimeError(ext, "NullArray", "InvalidOperation", "Cannot index into a null array.")
	case *Hashtable:
		val, _ := x.Get(ToString(idx))
		return val, nil
	case []Value:
		n, err := toInt(idx)
		if err != nil {
			return nil, runtimeError(ext, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
		}
		if n < 0 {
			n += int64(len(x))
		}
		if n < 0 || n >= int64(len(x)) {
			return nil, nil
		}
		return x[n], nil
	case string:
		n, err := toInt(idx)
		if err != nil {
			return nil, runtimeError(ext, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
		}
		rs := []rune(x)
		if n < 0 {
			n += int64(len(rs))
		}
		if n < 0 || n >= int64(len(rs)) {
			return nil, nil
		}
		return string(rs[n]), nil
	case *Object:
		if n, err := toInt(idx); err == nil {
			if n == 0 || n == -1 {
				return x, nil
			}
			return nil, nil
		}
		return nil, runtimeError(ext, "CannotIndex", "InvalidOperation", "Unable to index into an object of type %s.", x.TypeName())
	}
	if n, err := toInt(idx); err == nil {
		if n == 0 || n == -1 {
			return v, nil
		}
		return nil, nil
	}
	return nil, runtimeError(ext, "CannotIndex", "InvalidOperation", "Unable to index into an object of type %s.", TypeNameOf(v))
}

func (in *interp) staticMember(e *MemberExpr) (Value, error) {
	tv, err := in.eval(e.X)
	if err != nil {
		return nil, err
	}
	t, ok := tv.(*TypeValue)
	if !ok {
		return nil, runtimeError(e.Extent, "RuntimeException", "InvalidOperation", "Unable to find type.")
	}
	if et, ok := in.cmds.enums[strings.ToLower(t.Name)]; ok {
		v, err := et.Parse(e.Name)
		if err == nil {
			return v, nil
		}
	}
	switch strings.ToLower(t.Name) + "::" + strings.ToLower(e.Name) {
	case "system.datetime::utcnow":
		return in.now().UTC(), nil
	case "system.datetime::now":
		return in.now(), nil
	case "system.string::empty":
		return "", nil
	case "system.int32::maxvalue":
		return int64(math.MaxInt32), nil
	}
	return nil, nil
}

func (in *interp) invokeMethod(e *InvokeExpr) (Value, error) {
	target, err := in.eval(e.X)
	if err != nil {
		return nil, err
	}
	args := make([]Value, len(e.Args))
	for i, a := range e.Args {
		if args[i], err = in.eval(a); err != nil {
			return nil, err
		}
	}
	name := strings.ToLower(e.Name)
	if e.Static {
		t, _ := target.(*TypeValue)
		if t == nil {
			return nil, runtimeError(e.Extent, "MethodNotFound", "InvalidOperation", "Method invocation failed.")
		}
		switch strings.ToLower(t.Name) + "::" + name {
		case "system.string::isnullorempty":
			if len(args) == 1 {
				return ToString(args[0]) == "", nil
			}
		case "system.string::join":
			if len(args) == 2 {
				return joinValues(args[1], ToString(args[0])), nil
			}
		}
		return nil, runtimeError(e.Extent, "MethodNotFound", "InvalidOperation", "Method invocation failed because [%s] does not contain a method named '%s'.", t.Name, e.Name)
	}
	if target == nil {
		return nil, runtimeError(e.Extent, "InvokeMethodOnNull", "InvalidOperation", "You cannot call a method on a null-valued expression.")
	}
	noMethod := func() (Value, error) {
		return nil, runtimeError(e.Extent, "MethodNotFound", "InvalidOperation", "Method invocation failed because [%s] does not contain a method named '%s'.", TypeNameOf(target), e.Name)
	}
	argStr := func(i int) string {
		if i < len(args) {
			return ToString(args[i])
		}
		return ""
	}
	switch name {
	case "gettype":
		if len(args) == 0 {
			return &TypeValue{Name: TypeNameOf(target)}, nil
		}
	case "tostring":
		if tm, ok := target.(time.Time); ok && len(args) == 1 {
			return formatDate(tm, argStr(0)), nil
		}
		if len(args) == 0 {
			return ToString(target), nil
		}
	case "equals":
		if len(args) == 1 {
			c, ok, err := in.order(target, args[0], false, e.Extent)
			if err != nil {
				return nil, err
			}
			return ok && c == 0, nil
		}
	}
	switch x := target.(type) {
	case string:
		switch name {
		case "tolower", "tolowerinvariant":
			return strings.ToLower(x), nil
		case "toupper", "toupperinvariant":
			return strings.ToUpper(x), nil
		case "trim":
			if len(args) == 0 {
				return strings.TrimSpace(x), nil
			}
			return strings.Trim(x, argStr(0)), nil
		case "trimend":
			if len(args) == 0 {
				return strings.TrimRight(x, " \t\r\n"), nil
			}
			return strings.TrimRight(x, argStr(0)), nil
		case "trimstart":
			if len(args) == 0 {
				return strings.TrimLeft(x, " \t\r\n"), nil
			}
			return strings.TrimLeft(x, argStr(0)), nil
		case "contains":
			return strings.Contains(x, argStr(0)), nil
		case "startswith":
			return strings.HasPrefix(x, argStr(0)), nil
		case "endswith":
			return strings.HasSuffix(x, argStr(0)), nil
		case "replace":
			if len(args) == 2 {
				return strings.ReplaceAll(x, argStr(0), argStr(1)), nil
			}
		case "split":
			sep := argStr(0)
			var out []Value
			for _, p := range strings.FieldsFunc(x, func(r rune) bool { return strings.ContainsRune(sep, r) }) {
				out = append(out, p)
			}
			if sep == "" {
				out = []Value{x}
			}
			return out, nil
		case "indexof":
			return int64(strings.Index(x, argStr(0))), nil
		case "substring":
			rs := []rune(x)
			start, err := toInt(args[0])
			if err != nil || start < 0 || start > int64(len(rs)) {
				return nil, methodException(e.Extent, "Substring", "startIndex cannot be larger than length of string.\r\nParameter name: startIndex")
			}
			if len(args) == 1 {
				return string(rs[start:]), nil
			}
			n, err := toInt(args[1])
			if err != nil || n < 0 || start+n > int64(len(rs)) {
				return nil, methodException(e.Extent, "Substring", "Index and length must refer to a location within the string.\r\nParameter name: length")
			}
			return string(rs[start : start+n]), nil
		}
	case *Hashtable:
		switch name {
		case "containskey":
			return x.Has(argStr(0)), nil
		case "add":
			if len(args) == 2 {
				if x.Has(argStr(0)) {
					return nil, methodException(e.Extent, "Add", fmt.Sprintf("Item has already been added. Key in dictionary: '%s'  Key being added: '%s'", argStr(0), argStr(0)))
				}
				x.Set(argStr(0), args[1])
				return voidValue{}, nil
			}
		}
	case []Value:
		if name == "contains" && len(args) == 1 {
			for _, it := range x {
				if c, ok, _ := in.order(it, args[0], false, e.Extent); ok && c == 0 {
					return true, nil
				}
			}
			return false, nil
		}
	case time.Time:
		switch name {
		case "touniversaltime":
			return x.UTC(), nil
		case "addseconds":
			n, _ := toNumber(argStr(0))
			return x.Add(time.Duration(toFloat(n) * float64(time.Second))), nil
		}
	}
	return noMethod()
}

func methodException(ext Extent, method, msg string) error {
	r := NewError("System.Management.Automation.MethodInvocationException",
		fmt.Sprintf("Exception calling \"%s\" with \"%d\" argument(s): \"%s\"", method, 1, msg),
		"ArgumentOutOfRangeException", "NotSpecified", nil)
	r.setExtent(ext)
	return &psError{rec: r, kind: stmtTerminating}
}

// formatDate implements the .NET format strings scripts use with
// DateTime.ToString: the round-trip "o", sortable "s" and universal "u".
func formatDate(t time.Time, f string) string {
	switch f {
	case "o", "O":
		if t.Location() == time.UTC {
			return t.Format("2006-01-02T15:04:05.0000000Z")
		}
		return t.Format("2006-01-02T15:04:05.0000000-07:00")
	case "s":
		return t.Format("2006-01-02T15:04:05")
	case "u":
		return t.UTC().Format("2006-01-02 15:04:05Z")
	case "yyyy-MM-dd":
		return t.Format("2006-01-02")
	}
	return ToString(t)
}

// formatOperator implements -f with {index[,alignment][:format]} items.
func formatOperator(f string, args []Value, ext Extent) (Value, error) {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c == '{' && i+1 < len(f) && f[i+1] == '{' {
			b.WriteByte('{')
			i++
			continue
		}
		if c == '}' && i+1 < len(f) && f[i+1] == '}' {
			b.WriteByte('}')
			i++
			continue
		}
		if c != '{' {
			b.WriteByte(c)
			continue
		}
		j := strings.IndexByte(f[i:], '}')
		if j < 0 {
			return nil, badFormat(ext, f)
		}
		item := f[i+1 : i+j]
		i += j
		spec := ""
		if k := strings.IndexByte(item, ':'); k >= 0 {
			item, spec = item[:k], item[k+1:]
		}
		align := 0
		if k := strings.IndexByte(item, ','); k >= 0 {
			a, err := strconv.Atoi(strings.TrimSpace(item[k+1:]))
			if err != nil {
				return nil, badFormat(ext, f)
			}
			item, align = item[:k], a
		}
		n, err := strconv.Atoi(strings.TrimSpace(item))
		if err != nil || n < 0 || n >= len(args) {
			return nil, badFormat(ext, f)
		}
		s := formatItem(args[n], spec)
		for len(s) < align {
			s = " " + s
		}
		for len(s) < -align {
			s += " "
		}
		b.WriteString(s)
	}
	return b.String(), nil
}

func badFormat(ext Extent, f string) error {
	r := NewError("System.FormatException", fmt.Sprintf("Error formatting a string: Index (zero based) must be greater than or equal to zero and less than the size of the argument list.."), "FormatError", "InvalidOperation", f)
	r.setExtent(ext)
	return &psError{rec: r, kind: stmtTerminating}
}

func formatItem(v Value, spec string) string {
	if spec == "" {
		return ToString(v)
	}
	if tm, ok := v.(time.Time); ok {
		return formatDate(tm, spec)
	}
	n, err := toNumber(v)
	if err != nil {
		return ToString(v)
	}
	prec := 2
	if len(spec) > 1 {
		if p, err := strconv.Atoi(spec[1:]); err == nil {
			prec = p
		}
	}
	switch spec[0] {
	case 'N', 'n', 'F', 'f':
		// .NET Framework rounds midpoints away from zero when formatting.
		scale := math.Pow(10, float64(prec))
		return strconv.FormatFloat(math.Round(toFloat(n)*scale)/scale, 'f', prec, 64)
	case 'D', 'd':
		if i, ok := n.(int64); ok {
			s := strconv.FormatInt(i, 10)
			for len(s) < prec && len(spec) > 1 {
				s = "0" + s
			}
			return s
		}
	case 'X', 'x':
		if i, ok := n.(int64); ok {
			s := strconv.FormatInt(i, 16)
			if spec[0] == 'X' {
				s = strings.ToUpper(s)
			}
			return s
		}
	}
	return ToString(v)
}
