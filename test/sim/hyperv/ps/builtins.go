package ps

import (
	"fmt"
	"strings"
)

const utilityClass = "Microsoft.PowerShell.Commands."

func registerBuiltins(t *CommandTable) {
	t.AddEnum(actionPreference)
	t.AddEnum(errorCategories)
	t.Add(&Cmdlet{
		Name:  "Write-Output",
		Class: utilityClass + "WriteOutputCommand",
		Params: []Param{
			{Name: "InputObject", Type: TObjectArray, Position: 0, FromPipeline: true, Remaining: true, Mandatory: true},
			Named("NoEnumerate", TSwitch),
		},
		Process: func(c *Call) error {
			for _, v := range c.Objects("InputObject") {
				if c.Bool("NoEnumerate") {
					c.Write(v)
					continue
				}
				c.Write(exprOutput(v)...)
			}
			return nil
		},
	})
	t.Alias("echo", "Write-Output")
	t.Alias("write", "Write-Output")

	t.Add(&Cmdlet{
		Name:  "Write-Error",
		Class: utilityClass + "WriteErrorCommand",
		Params: []Param{
			{Name: "Message", Aliases: []string{"Msg"}, Type: TString, Position: 0, FromPipeline: true, Mandatory: true},
			Named("ErrorId", TString),
			{Name: "Category", Type: TEnum, Enum: errorCategories, Position: -1},
			Named("TargetObject", TObject),
			Named("RecommendedAction", TString),
		},
		Process: func(c *Call) error {
			id := c.String("ErrorId")
			if id == "" {
				id = "Microsoft.PowerShell.Commands.WriteErrorException"
			}
			cat := "NotSpecified"
			if c.Has("Category") {
				cat = c.Enum("Category").Name
			}
			r := NewError("Microsoft.PowerShell.Commands.WriteErrorException", c.String("Message"), id, cat, c.Args["TargetObject"])
			r.Activity = "Write-Error"
			// Write-Error reports the caller's line as the prefix and no
			// position block, and its FullyQualifiedErrorId has no command.
			r.standalone = true
			r.prefix = c.source() + " : "
			return c.WriteError(r)
		},
	})

	t.Add(&Cmdlet{
		Name:       "Out-Null",
		Class:      utilityClass + "OutNullCommand",
		Params:     []Param{{Name: "InputObject", Type: TObject, Position: -1, FromPipeline: true}},
		WholeInput: true,
		Process:    func(c *Call) error { return nil },
	})

	t.Add(&Cmdlet{
		Name:  "ConvertTo-Json",
		Class: utilityClass + "ConvertToJsonCommand",
		Params: []Param{
			{Name: "InputObject", Type: TObject, Position: 0, FromPipeline: true},
			Named("Depth", TInt),
			Named("Compress", TSwitch),
		},
		WholeInput: true,
		Process: func(c *Call) error {
			depth := int64(2)
			if c.Has("Depth") {
				depth = c.Int("Depth")
				if depth < 1 || depth > 100 {
					return c.Fail(NewError("System.Management.Automation.ParameterBindingValidationException",
						fmt.Sprintf("Cannot validate argument on parameter 'Depth'. The %d argument is greater than the maximum allowed range of 100. Supply an argument that is less than or equal to 100 and then try the command again.", depth),
						"ParameterArgumentValidationError", "InvalidData", nil))
				}
			}
			var v Value
			switch {
			case c.Has("InputObject"):
				v = c.Args["InputObject"]
			case len(c.Input) == 0:
				return nil
			case len(c.Input) == 1:
				v = c.Input[0]
			default:
				v = c.Input
			}
			c.Write(ToJSON(v, int(depth), c.Bool("Compress")))
			return nil
		},
	})

	t.Add(&Cmdlet{
		Name:  "Select-Object",
		Class: utilityClass + "SelectObjectCommand",
		Params: []Param{
			{Name: "Property", Type: TObjectArray, Position: 0},
			Named("ExcludeProperty", TStringArray),
			Named("ExpandProperty", TString),
			Named("First", TInt),
			Named("Last", TInt),
			Named("Skip", TInt),
			Named("Unique", TSwitch),
			{Name: "InputObject", Type: TObject, Position: -1, FromPipeline: true},
		},
		WholeInput: true,
		Process:    selectObject,
	})
	t.Alias("select", "Select-Object")

	t.Add(&Cmdlet{
		Name:  "Where-Object",
		Class: utilityClass + "WhereObjectCommand",
		Params: []Param{
			{Name: "FilterScript", Type: TScriptBlock, Position: 0, Mandatory: true},
			{Name: "InputObject", Type: TObject, Position: -1, FromPipeline: true},
		},
		WholeInput: true,
		Process: func(c *Call) error {
			sb := c.Args["FilterScript"].(*ScriptBlock)
			for _, item := range c.Input {
				out, err := c.Invoke(sb, item)
				if err != nil {
					return err
				}
				if IsTrue(collapse(out)) {
					c.Write(item)
				}
			}
			return nil
		},
	})
	t.Alias("where", "Where-Object")
	t.Alias("?", "Where-Object")

	t.Add(&Cmdlet{
		Name:  "ForEach-Object",
		Class: utilityClass + "ForEachObjectCommand",
		Params: []Param{
			{Name: "Process", Type: TObject, Position: 0, Mandatory: true},
			Named("Begin", TScriptBlock),
			Named("End", TScriptBlock),
			{Name: "InputObject", Type: TObject, Position: -1, FromPipeline: true},
		},
		WholeInput: true,
		Process:    forEachObject,
	})
	t.Alias("foreach", "ForEach-Object")
	t.Alias("%", "ForEach-Object")
}

func forEachObject(c *Call) error {
	run := func(sb *ScriptBlock, item Value) error {
		out, err := c.Invoke(sb, item)
		c.Write(out...)
		return err
	}
	if sb, ok := c.Args["Begin"].(*ScriptBlock); ok {
		if err := run(sb, nil); err != nil {
			return err
		}
	}
	items := c.Input
	if len(items) == 0 && !c.HasItem {
		items = []Value{nil}
	}
	switch p := c.Args["Process"].(type) {
	case *ScriptBlock:
		for _, item := range items {
			if err := run(p, item); err != nil {
				return err
			}
		}
	case string:
		for _, item := range items {
			v, ok := member(item, p)
			if !ok {
				r := NewError("System.Management.Automation.PSArgumentException",
					fmt.Sprintf("ForEach-Object : Input name \"%s\" cannot be resolved to a member.", p), "PropertyOrMethodNotFound", "InvalidArgument", item)
				if err := c.WriteError(r); err != nil {
					return err
				}
				continue
			}
			c.Write(exprOutput(v)...)
		}
	default:
		return c.Fail(NewError("System.Management.Automation.ParameterBindingException",
			fmt.Sprintf("Cannot bind parameter 'Process'. Cannot convert the \"%s\" value of type \"%s\" to type \"System.Management.Automation.ScriptBlock\".", ToString(p), TypeNameOf(p)),
			"CannotConvertArgumentNoMessage", "InvalidArgument", nil))
	}
	if sb, ok := c.Args["End"].(*ScriptBlock); ok {
		if err := run(sb, nil); err != nil {
			return err
		}
	}
	return nil
}

func selectObject(c *Call) error {
	items := c.Input
	if c.Has("Skip") {
		n := int(c.Int("Skip"))
		if n > len(items) {
			n = len(items)
		}
		items = items[n:]
	}
	if c.Has("First") {
		if n := int(c.Int("First")); n < len(items) {
			items = items[:max(n, 0)]
		}
	}
	if c.Has("Last") {
		if n := int(c.Int("Last")); n < len(items) {
			items = items[len(items)-max(n, 0):]
		}
	}
	props := c.Objects("Property")
	expand := c.String("ExpandProperty")
	var out []Value
	for _, item := range items {
		var obj Value = item
		if len(props) > 0 {
			o, err := selectProps(c, item, props)
			if err != nil {
				return err
			}
			obj = o
		}
		if expand != "" {
			v, ok := member(obj, expand)
			if !ok {
				r := NewError("System.Management.Automation.PSArgumentException",
					fmt.Sprintf("Property \"%s\" cannot be found.", expand), "ExpandPropertyNotFound", "InvalidArgument", item)
				if err := c.WriteError(r); err != nil {
					return err
				}
				continue
			}
			out = append(out, exprOutput(v)...)
			continue
		}
		out = append(out, obj)
	}
	if c.Bool("Unique") {
		var uniq []Value
		seen := map[string]bool{}
		for _, v := range out {
			k := TypeNameOf(v) + "\x00" + ToString(v)
			if !seen[k] {
				seen[k] = true
				uniq = append(uniq, v)
			}
		}
		out = uniq
	}
	c.Write(out...)
	return nil
}

func selectProps(c *Call, item Value, props []Value) (*Object, error) {
	o := NewPSObject()
	o.TypeNames = append([]string{"Selected." + TypeNameOf(item)}, o.TypeNames...)
	excluded := map[string]bool{}
	for _, x := range c.Strings("ExcludeProperty") {
		excluded[strings.ToLower(x)] = true
	}
	for _, p := range props {
		switch spec := p.(type) {
		case *Hashtable:
			name, expr, err := calculatedProperty(spec)
			if err != nil {
				return nil, c.Fail(err)
			}
			var v Value
			switch e := expr.(type) {
			case *ScriptBlock:
				out, err := c.Invoke(e, item)
				if err != nil {
					return nil, err
				}
				v = collapse(out)
			default:
				v, _ = member(item, ToString(e))
			}
			if name == "" {
				name = ToString(expr)
			}
			o.Set(name, v)
		default:
			name := ToString(spec)
			if HasWildcard(name) {
				for _, pn := range propertyNames(item) {
					if wildcardMatch(name, pn, false) && !excluded[strings.ToLower(pn)] {
						v, _ := member(item, pn)
						o.Set(pn, v)
					}
				}
				continue
			}
			v, _ := member(item, name)
			o.Set(name, v)
		}
	}
	return o, nil
}

func calculatedProperty(h *Hashtable) (string, Value, *ErrorRecord) {
	var name string
	var expr Value
	hasExpr := false
	for _, k := range h.Keys() {
		v, _ := h.Get(k)
		lk := strings.ToLower(k)
		switch {
		case lk != "" && (strings.HasPrefix("name", lk) || strings.HasPrefix("label", lk)):
			name = ToString(v)
		case lk != "" && strings.HasPrefix("expression", lk):
			expr, hasExpr = v, true
		default:
			return "", nil, NewError("System.NotSupportedException",
				fmt.Sprintf("The %s key is not valid.", k), "IllegalKeyFound", "InvalidArgument", nil)
		}
	}
	if !hasExpr {
		return "", nil, NewError("System.NotSupportedException",
			"The Expression key is missing from the hash table.", "DictionaryKeyMissing", "InvalidArgument", nil)
	}
	return name, expr, nil
}

func propertyNames(v Value) []string {
	switch x := v.(type) {
	case *Object:
		out := make([]string, len(x.Props))
		for i, p := range x.Props {
			out[i] = p.Name
		}
		return out
	}
	return nil
}
