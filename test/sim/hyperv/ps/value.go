package ps

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Value is a PowerShell value. The dynamic types are:
//
//	nil            $null
//	bool           System.Boolean
//	int64          System.Int32 / System.Int64 (literals and counters)
//	float64        System.Double
//	string         System.String
//	[]Value        System.Object[]
//	*Hashtable     System.Collections.Hashtable (and [ordered])
//	*Object        PSCustomObject or a typed .NET object (Hyper-V objects)
//	Enum           a .NET enum value: prints as its name, serialises as its integer
//	Guid           System.Guid
//	time.Time      System.DateTime
//	*ScriptBlock   a { } literal
//	*ErrorRecord   System.Management.Automation.ErrorRecord
//	*TypeValue     a [type] literal used as a value ([string], -is [int])
type Value any

// Enum is a .NET enum value.
type Enum struct {
	Type  string // full type name, e.g. Microsoft.HyperV.PowerShell.VMState
	Name  string
	Value int64
}

func (e Enum) String() string { return e.Name }

// EnumType describes a .NET enum so strings can be converted to it the way
// PowerShell's binder does.
type EnumType struct {
	Name   string // full type name
	Values []Enum // in declaration order
}

// Parse converts a name (case-insensitive) or an integer to a value of the enum.
func (t *EnumType) Parse(v Value) (Enum, error) {
	switch x := v.(type) {
	case Enum:
		if x.Type == t.Name {
			return x, nil
		}
		return t.Parse(x.Value)
	case int64:
		for _, e := range t.Values {
			if e.Value == x {
				return e, nil
			}
		}
		return Enum{Type: t.Name, Name: strconv.FormatInt(x, 10), Value: x}, nil
	case float64:
		return t.Parse(int64(x))
	}
	s := strings.TrimSpace(ToString(v))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return t.Parse(n)
	}
	for _, e := range t.Values {
		if strings.EqualFold(e.Name, s) {
			return e, nil
		}
	}
	names := make([]string, len(t.Values))
	for i, e := range t.Values {
		names[i] = e.Name
	}
	return Enum{}, fmt.Errorf("Unable to match the identifier name %s to a valid enumerator name. Specify one of the following enumerator names and try again:\r\n%s", s, strings.Join(names, ", "))
}

// Must returns the named value; it panics on a programming error in a cmdlet table.
func (t *EnumType) Must(name string) Enum {
	for _, e := range t.Values {
		if e.Name == name {
			return e
		}
	}
	panic("enum " + t.Name + " has no value " + name)
}

// NewEnumType builds an enum from name=value pairs in declaration order.
func NewEnumType(name string, pairs ...any) *EnumType {
	t := &EnumType{Name: name}
	for i := 0; i+1 < len(pairs); i += 2 {
		t.Values = append(t.Values, Enum{Type: name, Name: pairs[i].(string), Value: int64(pairs[i+1].(int))})
	}
	return t
}

// Guid is a System.Guid; it prints in lower case like .NET.
type Guid string

func (g Guid) String() string { return strings.ToLower(string(g)) }

// Hashtable is an insertion-ordered, case-insensitive map. PowerShell's plain
// @{} has hash order; keeping insertion order makes output deterministic and
// is one of the orders a real host may produce.
type Hashtable struct {
	keys    []string
	vals    map[string]Value
	orig    map[string]string
	Ordered bool
}

func NewHashtable() *Hashtable {
	return &Hashtable{vals: map[string]Value{}, orig: map[string]string{}}
}

func (h *Hashtable) Set(k string, v Value) {
	lk := strings.ToLower(k)
	if _, ok := h.vals[lk]; !ok {
		h.keys = append(h.keys, lk)
		h.orig[lk] = k
	}
	h.vals[lk] = v
}

func (h *Hashtable) Get(k string) (Value, bool) {
	v, ok := h.vals[strings.ToLower(k)]
	return v, ok
}

func (h *Hashtable) Has(k string) bool { _, ok := h.vals[strings.ToLower(k)]; return ok }

// Keys returns the keys as written, in insertion order.
func (h *Hashtable) Keys() []string {
	out := make([]string, len(h.keys))
	for i, k := range h.keys {
		out[i] = h.orig[k]
	}
	return out
}

func (h *Hashtable) Len() int { return len(h.keys) }

// Property is one named member of an Object.
type Property struct {
	Name  string
	Value Value
}

// Object is a PSCustomObject or a typed .NET object. Properties keep their
// declaration order, which is the order ConvertTo-Json and Select-Object use.
type Object struct {
	TypeNames []string // most derived first, e.g. Microsoft.HyperV.PowerShell.VirtualMachine
	Props     []Property
	// Native carries the emulator's handle for objects that cmdlets act on
	// again (a VirtualMachine piped to Start-VM, a compatibility report).
	Native any
	// Text is what ToString() returns for typed objects; PSCustomObjects
	// render as @{a=1; b=2}.
	Text string
}

const psCustomObject = "System.Management.Automation.PSCustomObject"

func NewPSObject() *Object {
	return &Object{TypeNames: []string{psCustomObject, "System.Object"}}
}

// NewObject creates a typed object.
func NewObject(typeName string) *Object {
	return &Object{TypeNames: []string{typeName, "System.Object"}, Text: typeName}
}

func (o *Object) TypeName() string {
	if len(o.TypeNames) == 0 {
		return "System.Object"
	}
	return o.TypeNames[0]
}

func (o *Object) IsCustom() bool {
	return o.TypeName() == psCustomObject || strings.HasPrefix(o.TypeName(), "Selected.")
}

func (o *Object) Get(name string) (Value, bool) {
	for _, p := range o.Props {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return nil, false
}

// Set adds or replaces a property.
func (o *Object) Set(name string, v Value) *Object {
	for i, p := range o.Props {
		if strings.EqualFold(p.Name, name) {
			o.Props[i].Value = v
			return o
		}
	}
	o.Props = append(o.Props, Property{Name: name, Value: v})
	return o
}

// ScriptBlock is a { } literal.
type ScriptBlock struct {
	Body StatementList
	Text string
}

// TypeValue is a [type] literal used as a value.
type TypeValue struct{ Name string }

// ToString converts like PowerShell's [string] cast and string expansion.
func ToString(v Value) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "True"
		}
		return "False"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return formatDouble(x)
	case Enum:
		return x.Name
	case Guid:
		return x.String()
	case time.Time:
		return x.Format("1/2/2006 3:04:05 PM")
	case []Value:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = ToString(e)
		}
		return strings.Join(parts, " ")
	case *Hashtable:
		return "System.Collections.Hashtable"
	case *Object:
		if x.IsCustom() {
			var b strings.Builder
			b.WriteString("@{")
			for i, p := range x.Props {
				if i > 0 {
					b.WriteString("; ")
				}
				b.WriteString(p.Name)
				b.WriteByte('=')
				b.WriteString(ToString(p.Value))
			}
			b.WriteString("}")
			return b.String()
		}
		return x.Text
	case *ScriptBlock:
		return x.Text
	case *ErrorRecord:
		return x.Exception.Message
	case *TypeValue:
		return x.Name
	}
	return fmt.Sprint(v)
}

func formatDouble(f float64) string {
	if math.IsInf(f, 1) {
		return "Infinity"
	}
	if math.IsInf(f, -1) {
		return "-Infinity"
	}
	if math.IsNaN(f) {
		return "NaN"
	}
	return strconv.FormatFloat(f, 'G', 15, 64)
}

// IsTrue is PowerShell's conversion to bool.
func IsTrue(v Value) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case int64:
		return x != 0
	case float64:
		return x != 0
	case string:
		return x != ""
	case Enum:
		return x.Value != 0
	case []Value:
		switch len(x) {
		case 0:
			return false
		case 1:
			return IsTrue(x[0])
		}
		return true
	}
	return true
}

// TypeNameOf returns the .NET type name of a value, as error messages show it.
func TypeNameOf(v Value) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return "System.Boolean"
	case int64:
		if x >= math.MinInt32 && x <= math.MaxInt32 {
			return "System.Int32"
		}
		return "System.Int64"
	case float64:
		return "System.Double"
	case string:
		return "System.String"
	case []Value:
		return "System.Object[]"
	case *Hashtable:
		if x.Ordered {
			return "System.Collections.Specialized.OrderedDictionary"
		}
		return "System.Collections.Hashtable"
	case *Object:
		return x.TypeName()
	case Enum:
		return x.Type
	case Guid:
		return "System.Guid"
	case time.Time:
		return "System.DateTime"
	case *ScriptBlock:
		return "System.Management.Automation.ScriptBlock"
	case *ErrorRecord:
		return "System.Management.Automation.ErrorRecord"
	case *TypeValue:
		return "System.RuntimeType"
	}
	return fmt.Sprintf("%T", v)
}

// toInt converts for [int] casts, indexes and parameters.
func toInt(v Value) (int64, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case int64:
		return x, nil
	case float64:
		// .NET rounds half to even when converting double to int.
		return int64(math.RoundToEven(x)), nil
	case Enum:
		return x.Value, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return 0, nil
		}
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return int64(math.RoundToEven(f)), nil
		}
	case []Value:
		if len(x) == 1 {
			return toInt(x[0])
		}
	}
	return 0, fmt.Errorf("Cannot convert value \"%s\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\"", ToString(v))
}

func toNumber(v Value) (Value, error) {
	switch x := v.(type) {
	case nil:
		return int64(0), nil
	case int64, float64:
		return x, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case Enum:
		return x.Value, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return int64(0), nil
		}
		if n, err := strconv.ParseInt(s, 0, 64); err == nil {
			return n, nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f, nil
		}
	}
	return nil, fmt.Errorf("Cannot convert value \"%s\" to type \"System.Int32\". Error: \"Input string was not in a correct format.\"", ToString(v))
}

// AsList returns the elements PowerShell enumerates for v: an array's items,
// nothing for $null, or v itself.
func AsList(v Value) []Value {
	switch x := v.(type) {
	case nil:
		return nil
	case []Value:
		return x
	}
	return []Value{v}
}

// collapse turns pipeline output into the value an assignment receives:
// nothing is $null, one item is the item, more are an array.
func collapse(out []Value) Value {
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

// member returns a property of v the way PowerShell's member access does,
// including member enumeration over arrays.
func member(v Value, name string) (Value, bool) {
	switch x := v.(type) {
	case nil:
		return nil, false
	case *Object:
		return x.Get(name)
	case *Hashtable:
		if val, ok := x.Get(name); ok {
			return val, true
		}
		switch strings.ToLower(name) {
		case "count", "length":
			return int64(x.Len()), true
		case "keys":
			ks := x.Keys()
			out := make([]Value, len(ks))
			for i, k := range ks {
				out[i] = k
			}
			return out, true
		}
		return nil, false
	case *ErrorRecord:
		return x.member(name)
	case string:
		if strings.EqualFold(name, "Length") {
			return int64(len([]rune(x))), true
		}
	case []Value:
		switch strings.ToLower(name) {
		case "count", "length":
			return int64(len(x)), true
		}
		var out []Value
		for _, e := range x {
			if m, ok := member(e, name); ok {
				out = append(out, AsList(m)...)
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return collapse(out), true
	case Enum:
		if strings.EqualFold(name, "value__") {
			return x.Value, true
		}
	case time.Time:
		switch strings.ToLower(name) {
		case "year":
			return int64(x.Year()), true
		case "ticks":
			return dateTicks(x), true
		}
	case *TypeValue:
		switch strings.ToLower(name) {
		case "fullname":
			return x.Name, true
		case "name":
			if i := strings.LastIndexByte(x.Name, '.'); i >= 0 {
				return x.Name[i+1:], true
			}
			return x.Name, true
		}
	}
	if strings.EqualFold(name, "Count") || strings.EqualFold(name, "Length") {
		// PowerShell 3+ gives every scalar a Count of 1.
		return int64(1), true
	}
	return nil, false
}

// dateTicks converts to .NET ticks (100ns since 0001-01-01).
func dateTicks(t time.Time) int64 {
	const unixEpochTicks = 621355968000000000
	return unixEpochTicks + t.UnixNano()/100
}
