package ps

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// ParamType is how the binder converts an argument.
type ParamType int

const (
	TString ParamType = iota
	TStringArray
	TInt
	TBool
	TSwitch
	TEnum
	TObject      // any value, or one of ObjectTypes
	TObjectArray // one or more values, each any or one of ObjectTypes
	TScriptBlock
	THashtable
	TDateTime
)

func (t ParamType) netName(p *Param) string {
	switch t {
	case TString:
		return "System.String"
	case TStringArray:
		return "System.String[]"
	case TInt:
		return "System.Int32"
	case TBool:
		return "System.Boolean"
	case TSwitch:
		return "System.Management.Automation.SwitchParameter"
	case TEnum:
		return p.Enum.Name
	case TScriptBlock:
		return "System.Management.Automation.ScriptBlock"
	case THashtable:
		return "System.Collections.Hashtable"
	case TDateTime:
		return "System.DateTime"
	case TObjectArray:
		if len(p.ObjectTypes) > 0 {
			return p.ObjectTypes[0] + "[]"
		}
		return "System.Object[]"
	}
	if len(p.ObjectTypes) > 0 {
		return p.ObjectTypes[0]
	}
	return "System.Object"
}

// Param declares a cmdlet parameter.
type Param struct {
	Name         string
	Aliases      []string
	Type         ParamType
	Enum         *EnumType
	ObjectTypes  []string // accepted TypeNames for TObject/TObjectArray; empty = any
	Position     int      // 0-based; -1 for named only
	Mandatory    bool
	FromPipeline bool     // ValueFromPipeline
	Remaining    bool     // ValueFromRemainingArguments: collects extra positional arguments
	Sets         []string // parameter sets this parameter belongs to; empty = all
}

// Named is a convenience for a named-only parameter.
func Named(name string, t ParamType, aliases ...string) Param {
	return Param{Name: name, Type: t, Position: -1, Aliases: aliases}
}

// Cmdlet is a command the interpreter can run.
type Cmdlet struct {
	Name       string
	Class      string // implementing type for FullyQualifiedErrorId, e.g. Microsoft.HyperV.PowerShell.Commands.GetVM
	Params     []Param
	Sets       []string // parameter set names, default first; nil = one unnamed set
	HighImpact bool     // ConfirmImpact High: prompts unless -Confirm:$false
	// WholeInput makes Process run once with all pipeline input in
	// Call.Input (ConvertTo-Json, Select-Object); otherwise Process runs once
	// per input item with the item bound to the pipeline parameter.
	WholeInput bool
	Process    func(c *Call) error
	// End runs once after all input for per-item cmdlets (optional).
	End func(c *Call) error
}

// CommandTable maps names and aliases to cmdlets, case-insensitively.
type CommandTable struct {
	cmds       map[string]*Cmdlet
	aliases    map[string]string
	exceptions map[string]string // exception type -> base type
	types      map[string]bool   // lower-case object type names
	enums      map[string]*EnumType
}

// NewCommandTable returns a table with the built-in cmdlets of the subset.
func NewCommandTable() *CommandTable {
	t := &CommandTable{cmds: map[string]*Cmdlet{}, aliases: map[string]string{}}
	registerBuiltins(t)
	return t
}

// Add registers a cmdlet; a later Add replaces an earlier one.
func (t *CommandTable) Add(c *Cmdlet) { t.cmds[strings.ToLower(c.Name)] = c }

// Alias registers an alias for a cmdlet name.
func (t *CommandTable) Alias(alias, name string) {
	t.aliases[strings.ToLower(alias)] = strings.ToLower(name)
}

// Lookup finds a cmdlet by name or alias.
func (t *CommandTable) Lookup(name string) (*Cmdlet, bool) {
	n := strings.ToLower(name)
	if a, ok := t.aliases[n]; ok {
		n = a
	}
	c, ok := t.cmds[n]
	return c, ok
}

// Names lists the registered cmdlet names, sorted.
func (t *CommandTable) Names() []string {
	var out []string
	for _, c := range t.cmds {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

// Call is one invocation of a cmdlet's Process function.
type Call struct {
	Ctx   context.Context
	Cmd   *Cmdlet
	Args  map[string]Value // by declared parameter name
	Set   string           // the resolved parameter set
	Input []Value          // all pipeline input (WholeInput cmdlets)
	// Item is the current pipeline object for per-item cmdlets.
	Item    Value
	HasItem bool
	Now     func() time.Time

	in  *interp
	ast *Command
	out []Value
	ea  string // effective ErrorAction
	bad bool   // a non-terminating error was written
}

// source is the text of the command invocation.
func (c *Call) source() string {
	if c.ast == nil {
		return c.Cmd.Name
	}
	return c.in.src[c.ast.Start:c.ast.End]
}

// Has reports whether the parameter was bound.
func (c *Call) Has(name string) bool { _, ok := c.Args[name]; return ok }

// String returns a bound string parameter ("" when unbound).
func (c *Call) String(name string) string { s, _ := c.Args[name].(string); return s }

// Strings returns a bound string-array parameter.
func (c *Call) Strings(name string) []string {
	v, ok := c.Args[name]
	if !ok {
		return nil
	}
	out := []string{}
	for _, e := range AsList(v) {
		out = append(out, ToString(e))
	}
	return out
}

// Int returns a bound integer parameter.
func (c *Call) Int(name string) int64 { n, _ := c.Args[name].(int64); return n }

// Bool returns a bound bool or switch parameter.
func (c *Call) Bool(name string) bool { b, _ := c.Args[name].(bool); return b }

// Enum returns a bound enum parameter.
func (c *Call) Enum(name string) Enum { e, _ := c.Args[name].(Enum); return e }

// Objects returns a bound object or object-array parameter as a list.
func (c *Call) Objects(name string) []Value { return AsList(c.Args[name]) }

// Write sends objects down the pipeline.
func (c *Call) Write(vs ...Value) { c.out = append(c.out, vs...) }

// WriteError reports a non-terminating error, honouring -ErrorAction.
func (c *Call) WriteError(r *ErrorRecord) error {
	c.bad = true
	if r.Command == "" {
		r.Command = c.Cmd.Class
	}
	if r.Activity == "" {
		r.Activity = c.Cmd.Name
	}
	if !r.standalone && c.ast != nil {
		r.setExtent(c.ast.Extent)
		if r.prefix == "" {
			r.prefix = c.Cmd.Name + " : "
		}
	}
	return c.in.nonTerminating(r, c.ea)
}

// Fail builds a terminating error for this cmdlet (ThrowTerminatingError).
func (c *Call) Fail(r *ErrorRecord) error {
	if r.Command == "" {
		r.Command = c.Cmd.Class
	}
	if r.Activity == "" {
		r.Activity = c.Cmd.Name
	}
	return &psError{rec: r, kind: stmtTerminating}
}

// Invoke runs a script block with $_ set to item and returns its output.
func (c *Call) Invoke(sb *ScriptBlock, item Value) ([]Value, error) {
	return c.in.invokeBlock(sb, item)
}

// ---- binding ----

var actionPreference = NewEnumType("System.Management.Automation.ActionPreference",
	"SilentlyContinue", 0, "Stop", 1, "Continue", 2, "Inquire", 3, "Ignore", 4, "Suspend", 5)

var commonParams = []Param{
	{Name: "ErrorAction", Aliases: []string{"ea"}, Type: TEnum, Enum: actionPreference, Position: -1},
	{Name: "WarningAction", Aliases: []string{"wa"}, Type: TEnum, Enum: actionPreference, Position: -1},
	{Name: "InformationAction", Aliases: []string{"infa"}, Type: TEnum, Enum: actionPreference, Position: -1},
	{Name: "Verbose", Aliases: []string{"vb"}, Type: TSwitch, Position: -1},
	{Name: "Debug", Aliases: []string{"db"}, Type: TSwitch, Position: -1},
}

var shouldProcessParams = []Param{
	{Name: "WhatIf", Aliases: []string{"wi"}, Type: TSwitch, Position: -1},
	{Name: "Confirm", Aliases: []string{"cf"}, Type: TSwitch, Position: -1},
}

func (cmd *Cmdlet) allParams() []Param {
	ps := append([]Param{}, cmd.Params...)
	ps = append(ps, commonParams...)
	if cmd.HighImpact || cmd.hasConfirm() {
		ps = append(ps, shouldProcessParams...)
	}
	return ps
}

func (cmd *Cmdlet) hasConfirm() bool {
	for _, p := range cmd.Params {
		if p.Name == "Confirm" {
			return true
		}
	}
	return cmd.Class != "" && strings.HasPrefix(cmd.Class, "Microsoft.HyperV")
}

func bindingError(cmd *Cmdlet, id, msg string) *psError {
	r := NewError("System.Management.Automation.ParameterBindingException", msg, id, "InvalidArgument", nil)
	r.Command = cmd.Class
	r.Activity = cmd.Name
	return &psError{rec: r, kind: stmtTerminating}
}

// resolveParam finds a parameter by exact name, alias or unique prefix.
func resolveParam(cmd *Cmdlet, all []Param, name string) (*Param, error) {
	ln := strings.ToLower(name)
	for i := range all {
		if strings.ToLower(all[i].Name) == ln {
			return &all[i], nil
		}
		for _, a := range all[i].Aliases {
			if strings.ToLower(a) == ln {
				return &all[i], nil
			}
		}
	}
	var matches []*Param
	for i := range all {
		if strings.HasPrefix(strings.ToLower(all[i].Name), ln) {
			matches = append(matches, &all[i])
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return nil, bindingError(cmd, "NamedParameterNotFound", fmt.Sprintf("A parameter cannot be found that matches parameter name '%s'.", name))
	}
	names := make([]string, len(matches))
	for i, m := range matches {
		names[i] = "-" + m.Name
	}
	return nil, bindingError(cmd, "AmbiguousParameter", fmt.Sprintf("Parameter cannot be processed because the parameter name '%s' is ambiguous. Possible matches include: %s.", name, strings.Join(names, " ")))
}

// convertArg converts an argument for a parameter the way the binder does.
func convertArg(cmd *Cmdlet, p *Param, v Value) (Value, error) {
	fail := func(detail string) error {
		return bindingError(cmd, "CannotConvertArgumentNoMessage",
			fmt.Sprintf("Cannot bind parameter '%s'. %s", p.Name, detail))
	}
	convFail := func(inner string) error {
		return fail(fmt.Sprintf("Cannot convert value \"%s\" to type \"%s\". Error: \"%s\"", ToString(v), p.Type.netName(p), inner))
	}
	switch p.Type {
	case TString:
		if arr, ok := v.([]Value); ok && len(arr) != 1 {
			return nil, fail(fmt.Sprintf("Cannot convert 'System.Object[]' to the type 'System.String' required by parameter '%s'. Specified method is not supported.", p.Name))
		}
		if arr, ok := v.([]Value); ok {
			v = arr[0]
		}
		return ToString(v), nil
	case TStringArray:
		var out []Value
		for _, e := range AsList(v) {
			out = append(out, ToString(e))
		}
		return out, nil
	case TInt:
		n, err := toInt(v)
		if err != nil {
			return nil, convFail("Input string was not in a correct format.")
		}
		return n, nil
	case TBool, TSwitch:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		}
		if p.Type == TBool {
			return nil, fail(fmt.Sprintf("Cannot convert value \"%s\" to type \"System.Boolean\". Boolean parameters accept only Boolean values and numbers, such as $True, $False, 1 or 0.", ToString(v)))
		}
		return IsTrue(v), nil
	case TEnum:
		e, err := p.Enum.Parse(v)
		if err != nil {
			return nil, convFail(err.Error())
		}
		return e, nil
	case TScriptBlock:
		sb, ok := v.(*ScriptBlock)
		if !ok {
			return nil, fail(fmt.Sprintf("Cannot convert the \"%s\" value of type \"%s\" to type \"System.Management.Automation.ScriptBlock\".", ToString(v), TypeNameOf(v)))
		}
		return sb, nil
	case THashtable:
		h, ok := v.(*Hashtable)
		if !ok {
			return nil, fail(fmt.Sprintf("Cannot convert the \"%s\" value of type \"%s\" to type \"System.Collections.Hashtable\".", ToString(v), TypeNameOf(v)))
		}
		return h, nil
	case TDateTime:
		t, ok := v.(time.Time)
		if !ok {
			return nil, convFail("String was not recognized as a valid DateTime.")
		}
		return t, nil
	case TObject, TObjectArray:
		items := AsList(v)
		if p.Type == TObject {
			items = []Value{v}
		}
		if len(p.ObjectTypes) > 0 {
			for _, it := range items {
				if !isOfType(it, p.ObjectTypes) {
					return nil, fail(fmt.Sprintf("Cannot convert the \"%s\" value of type \"%s\" to type \"%s\".", ToString(it), TypeNameOf(it), p.ObjectTypes[0]))
				}
			}
		}
		if p.Type == TObjectArray {
			return items, nil
		}
		return v, nil
	}
	return v, nil
}

func isOfType(v Value, types []string) bool {
	o, ok := v.(*Object)
	if !ok {
		return false
	}
	for _, t := range types {
		for _, tn := range o.TypeNames {
			if strings.EqualFold(t, tn) {
				return true
			}
		}
	}
	return false
}

type boundArgs struct {
	args  map[string]Value
	named map[string]bool
}

// bindStatic binds the parameters and arguments written on the command line.
func (in *interp) bindStatic(cmd *Cmdlet, c *Command) (*boundArgs, error) {
	all := cmd.allParams()
	b := &boundArgs{args: map[string]Value{}, named: map[string]bool{}}
	var positional []Value
	var positionalExt []Extent
	for i := 0; i < len(c.Elements); i++ {
		el := c.Elements[i]
		if el.Param == "" {
			v, err := in.eval(el.Arg)
			if err != nil {
				return nil, err
			}
			positional = append(positional, v)
			positionalExt = append(positionalExt, el.Extent)
			continue
		}
		p, err := resolveParam(cmd, all, el.Param)
		if err != nil {
			err.(*psError).rec.setExtent(el.Extent)
			return nil, err
		}
		if _, dup := b.args[p.Name]; dup {
			e := bindingError(cmd, "ParameterAlreadyBound", fmt.Sprintf("Cannot bind parameter because parameter '%s' is specified more than once. To provide multiple values to parameters that can accept multiple values, use the array syntax. For example, \"-parameter value1,value2,value3\".", p.Name))
			e.rec.setExtent(el.Extent)
			return nil, e
		}
		var raw Value
		switch {
		case el.HasColon:
			v, err := in.eval(el.ColonArg)
			if err != nil {
				return nil, err
			}
			raw = v
		case p.Type == TSwitch:
			raw = true
		default:
			if i+1 >= len(c.Elements) || c.Elements[i+1].Param != "" {
				e := bindingError(cmd, "MissingArgument", fmt.Sprintf("Missing an argument for parameter '%s'. Specify a parameter of type '%s' and try again.", p.Name, p.Type.netName(p)))
				e.rec.setExtent(el.Extent)
				return nil, e
			}
			i++
			v, err := in.eval(c.Elements[i].Arg)
			if err != nil {
				return nil, err
			}
			raw = v
		}
		v, err := convertArg(cmd, p, raw)
		if err != nil {
			err.(*psError).rec.setExtent(el.Extent)
			return nil, err
		}
		b.args[p.Name] = v
		b.named[p.Name] = true
	}
	// Positional arguments fill unbound positional parameters in order.
	var slots []*Param
	for i := range cmd.Params {
		if cmd.Params[i].Position >= 0 {
			slots = append(slots, &cmd.Params[i])
		}
	}
	sort.SliceStable(slots, func(i, j int) bool { return slots[i].Position < slots[j].Position })
	for k, v := range positional {
		var slot *Param
		for _, s := range slots {
			if _, bound := b.args[s.Name]; !bound && setsCompatible(cmd, s, b.args) {
				slot = s
				break
			}
		}
		if slot == nil {
			if rp := remainingParam(cmd); rp != nil {
				b.args[rp.Name] = append(AsList(b.args[rp.Name]), v)
				continue
			}
			e := bindingError(cmd, "PositionalParameterNotFound", fmt.Sprintf("A positional parameter cannot be found that accepts argument '%s'.", ToString(v)))
			e.rec.setExtent(positionalExt[k])
			return nil, e
		}
		cv, err := convertArg(cmd, slot, v)
		if err != nil {
			err.(*psError).rec.setExtent(positionalExt[k])
			return nil, err
		}
		b.args[slot.Name] = cv
	}
	return b, nil
}

// setsCompatible reports whether p shares a parameter set with every
// parameter bound so far, so positional arguments stay in one set.
func setsCompatible(cmd *Cmdlet, p *Param, bound map[string]Value) bool {
	if len(p.Sets) == 0 {
		return true
	}
	for i := range cmd.Params {
		q := &cmd.Params[i]
		if _, ok := bound[q.Name]; !ok || len(q.Sets) == 0 {
			continue
		}
		shared := false
		for _, a := range p.Sets {
			for _, b := range q.Sets {
				if a == b {
					shared = true
				}
			}
		}
		if !shared {
			return false
		}
	}
	return true
}

func remainingParam(cmd *Cmdlet) *Param {
	for i := range cmd.Params {
		if cmd.Params[i].Remaining {
			return &cmd.Params[i]
		}
	}
	return nil
}

// resolveSet picks the parameter set for the bound parameters and checks
// that its mandatory parameters are present.
func resolveSet(cmd *Cmdlet, args map[string]Value) (string, error) {
	if len(cmd.Sets) == 0 {
		for _, p := range cmd.Params {
			if p.Mandatory {
				if _, ok := args[p.Name]; !ok {
					return "", missingMandatory(cmd, []string{p.Name})
				}
			}
		}
		return "", nil
	}
	inSet := func(p *Param, set string) bool {
		if len(p.Sets) == 0 {
			return true
		}
		for _, s := range p.Sets {
			if s == set {
				return true
			}
		}
		return false
	}
	var candidates []string
	for _, set := range cmd.Sets {
		ok := true
		for i := range cmd.Params {
			p := &cmd.Params[i]
			if _, bound := args[p.Name]; bound && !inSet(p, set) {
				ok = false
				break
			}
		}
		if ok {
			candidates = append(candidates, set)
		}
	}
	if len(candidates) == 0 {
		return "", bindingError(cmd, "AmbiguousParameterSet", "Parameter set cannot be resolved using the specified named parameters.")
	}
	// Prefer a candidate whose mandatory parameters are all bound, in
	// declaration order (the default set first).
	var firstMissing []string
	for _, set := range candidates {
		var missing []string
		for i := range cmd.Params {
			p := &cmd.Params[i]
			if p.Mandatory && inSet(p, set) {
				if _, ok := args[p.Name]; !ok {
					missing = append(missing, p.Name)
				}
			}
		}
		if len(missing) == 0 {
			return set, nil
		}
		if firstMissing == nil {
			firstMissing = missing
		}
	}
	return "", missingMandatory(cmd, firstMissing)
}

func missingMandatory(cmd *Cmdlet, names []string) error {
	return bindingError(cmd, "MissingMandatoryParameter", fmt.Sprintf("Cannot process command because of one or more missing mandatory parameters: %s.", strings.Join(names, " ")))
}

// bindPipeline binds one pipeline object to the parameter that takes it.
func bindPipeline(cmd *Cmdlet, args map[string]Value, item Value) bool {
	for i := range cmd.Params {
		p := &cmd.Params[i]
		if !p.FromPipeline {
			continue
		}
		if _, named := args[p.Name]; named {
			continue
		}
		if len(p.ObjectTypes) > 0 && !isOfType(item, p.ObjectTypes) {
			continue
		}
		v, err := convertArg(cmd, p, item)
		if err != nil {
			continue
		}
		args[p.Name] = v
		return true
	}
	return false
}

// Wildcard reports whether a PowerShell wildcard pattern (* ? [..]) matches
// s, case-insensitively.
func Wildcard(pattern, s string) bool {
	ok, err := path.Match(strings.ToLower(pattern), strings.ToLower(s))
	return err == nil && ok
}

// HasWildcard reports whether s contains wildcard characters.
func HasWildcard(s string) bool { return strings.ContainsAny(s, "*?[") }
