package ps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Options configures one script run.
type Options struct {
	Commands *CommandTable
	// Env is the process environment ($env:NAME), looked up case-insensitively.
	Env map[string]string
	// CLIXML writes the error stream as powershell.exe does when it was
	// started with -EncodedCommand and a redirected stderr; otherwise the
	// error stream is plain text.
	CLIXML bool
	// Progress adds the "Preparing modules for first use." progress record
	// a fresh host writes to stderr even on success (needs CLIXML).
	Progress bool
	// Now is the clock for cmdlets; defaults to time.Now.
	Now func() time.Time
}

// Result is what powershell.exe leaves behind.
type Result struct {
	Stdout   string
	Stderr   string
	ExitCode int
}

type errKind int

const (
	stmtTerminating errKind = iota
	scriptTerminating
)

// psError is a terminating error unwinding to the nearest catch.
type psError struct {
	rec  *ErrorRecord
	kind errKind
}

func (e *psError) Error() string { return e.rec.Exception.Message }

// flow is exit, return, break or continue unwinding.
type flow struct {
	kind string
	code int
}

func (f *flow) Error() string { return f.kind }

func (r *ErrorRecord) setExtent(e Extent) {
	if !r.hasExtent {
		r.extent, r.hasExtent = e, true
	}
}

type interp struct {
	ctx      context.Context
	src      string
	cmds     *CommandTable
	vars     map[string]Value
	env      map[string]string
	now      func() time.Time
	stdout   strings.Builder
	errLines []string
	errList  []Value // $Error, newest first
	lastOK   bool
	tryDepth int
	steps    int
}

// maxSteps bounds the work one script may do; the subset has no unbounded
// loops, but ranges and nested foreach could still be made enormous.
const maxSteps = 2_000_000

// Run parses and runs a script and returns its output and exit code the way
// "powershell.exe -EncodedCommand" reports them.
func Run(ctx context.Context, script string, opt Options) Result {
	in := &interp{
		ctx:    ctx,
		src:    script,
		cmds:   opt.Commands,
		vars:   map[string]Value{},
		env:    map[string]string{},
		now:    opt.Now,
		lastOK: true,
	}
	if in.cmds == nil {
		in.cmds = NewCommandTable()
	}
	if in.now == nil {
		in.now = time.Now
	}
	for k, v := range opt.Env {
		in.env[strings.ToLower(k)] = v
	}
	in.vars["erroractionpreference"] = actionPreference.Must("Continue")
	in.vars["progresspreference"] = actionPreference.Must("Continue")
	in.vars["warningpreference"] = actionPreference.Must("Continue")
	in.vars["confirmpreference"] = "High"
	in.vars["ofs"] = " "

	code := 0
	list, err := Parse(script)
	if err != nil {
		var pe *ParseError
		errors.As(err, &pe)
		rec := &ErrorRecord{
			Exception:  &Exception{Type: "System.Management.Automation.ParseException", Message: pe.Message, HResult: HRESULT(0x80131501)},
			ErrorID:    pe.ID,
			Category:   "ParserError",
			extent:     pe.Extent,
			hasExtent:  true,
			parseError: true,
		}
		in.errLines = append(in.errLines, rec.render(script)...)
		code = 1
	} else {
		code = in.runTop(list)
	}
	res := Result{Stdout: in.stdout.String(), ExitCode: code}
	switch {
	case opt.CLIXML && (len(in.errLines) > 0 || opt.Progress):
		res.Stderr = clixml(in.errLines, opt.Progress)
	case len(in.errLines) > 0:
		res.Stderr = strings.Join(in.errLines, "\r\n") + "\r\n"
	}
	return res
}

func (in *interp) runTop(list StatementList) int {
	_, err := in.execList(list, func(vs []Value) { in.stdout.WriteString(formatOutput(vs)) })
	var f *flow
	var pe *psError
	switch {
	case errors.As(err, &f):
		if f.kind == "exit" {
			return f.code
		}
	case errors.As(err, &pe):
		in.display(pe.rec)
		return 1
	case err != nil:
		// Cancellation (Signal terminate, shell deleted).
		in.errLines = append(in.errLines, "The pipeline has been stopped.")
		return 1
	}
	if in.lastOK {
		return 0
	}
	return 1
}

func (in *interp) display(r *ErrorRecord) {
	in.errLines = append(in.errLines, r.render(in.src)...)
}

func (in *interp) eap() string {
	if e, ok := in.vars["erroractionpreference"].(Enum); ok {
		return e.Name
	}
	if s, ok := in.vars["erroractionpreference"].(string); ok {
		if e, err := actionPreference.Parse(s); err == nil {
			return e.Name
		}
	}
	return "Continue"
}

// nonTerminating applies an ErrorAction to a non-terminating error.
func (in *interp) nonTerminating(r *ErrorRecord, action string) error {
	if action == "" {
		action = in.eap()
	}
	switch action {
	case "Stop":
		return &psError{rec: r, kind: scriptTerminating}
	case "Ignore":
		return nil
	case "SilentlyContinue":
		in.errList = append([]Value{r}, in.errList...)
		return nil
	}
	in.errList = append([]Value{r}, in.errList...)
	in.display(r)
	return nil
}

func (in *interp) step() error {
	in.steps++
	if in.steps > maxSteps {
		r := NewError("System.Management.Automation.RuntimeException", "The script exceeded the emulator's execution budget.", "EmulatorBudgetExceeded", "LimitsExceeded", nil)
		return &psError{rec: r, kind: scriptTerminating}
	}
	if in.steps%64 == 0 {
		if err := in.ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// execList runs statements. With a sink, each statement's output goes to the
// sink as soon as the statement ends (top level); otherwise it is returned.
func (in *interp) execList(list StatementList, sink func([]Value)) ([]Value, error) {
	var out []Value
	for _, st := range list {
		if err := in.ctx.Err(); err != nil {
			return out, err
		}
		vs, err := in.execStmt(st)
		if sink != nil {
			sink(vs)
		} else {
			out = append(out, vs...)
		}
		if err != nil {
			var pe *psError
			if errors.As(err, &pe) && pe.kind == stmtTerminating && in.tryDepth == 0 && in.eap() != "Stop" {
				in.errList = append([]Value{pe.rec}, in.errList...)
				in.display(pe.rec)
				in.lastOK = false
				continue
			}
			return out, err
		}
	}
	return out, nil
}

func (in *interp) execStmt(st Stmt) ([]Value, error) {
	if err := in.step(); err != nil {
		return nil, err
	}
	switch s := st.(type) {
	case *Pipeline:
		return in.runPipeline(s)
	case *AssignStmt:
		return nil, in.execAssign(s)
	case *IfStmt:
		for _, cl := range s.Clauses {
			v, err := in.runPipeline(cl.Cond)
			if err != nil {
				return nil, err
			}
			if IsTrue(collapse(v)) {
				return in.execList(cl.Body, nil)
			}
		}
		if s.HasElse {
			return in.execList(s.Else, nil)
		}
		return nil, nil
	case *ForeachStmt:
		return in.execForeach(s)
	case *TryStmt:
		return in.execTry(s)
	case *FlowStmt:
		return in.execFlow(s)
	}
	return nil, fmt.Errorf("ps: unknown statement %T", st)
}

func (in *interp) execForeach(s *ForeachStmt) ([]Value, error) {
	src, err := in.runPipeline(s.In)
	if err != nil {
		return nil, err
	}
	if len(src) == 1 && src[0] == nil {
		src = nil
	}
	var out []Value
	for _, item := range src {
		if err := in.step(); err != nil {
			return out, err
		}
		in.vars[strings.ToLower(s.Var)] = item
		vs, err := in.execList(s.Body, nil)
		out = append(out, vs...)
		var f *flow
		if errors.As(err, &f) && (f.kind == "break" || f.kind == "continue") {
			if f.kind == "break" {
				break
			}
			continue
		}
		if err != nil {
			return out, err
		}
	}
	in.lastOK = true
	return out, nil
}

func (in *interp) execTry(s *TryStmt) ([]Value, error) {
	in.tryDepth++
	out, err := in.execList(s.Body, nil)
	in.tryDepth--
	var pe *psError
	if errors.As(err, &pe) {
		cc, terr := in.matchCatch(s.Catches, pe.rec)
		if terr != nil {
			err = terr
		} else if cc != nil {
			saved, hadSaved := in.vars["_"]
			in.vars["_"], in.vars["psitem"] = pe.rec, pe.rec
			cout, cerr := in.execList(cc.Body, nil)
			if hadSaved {
				in.vars["_"], in.vars["psitem"] = saved, saved
			} else {
				delete(in.vars, "_")
				delete(in.vars, "psitem")
			}
			out = append(out, cout...)
			err = cerr
		}
	}
	if s.HasFinally {
		fout, ferr := in.execList(s.Finally, nil)
		out = append(out, fout...)
		if ferr != nil {
			err = ferr
		}
	}
	return out, err
}

func (in *interp) matchCatch(catches []CatchClause, r *ErrorRecord) (*CatchClause, error) {
	for i := range catches {
		cc := &catches[i]
		if len(cc.Types) == 0 {
			return cc, nil
		}
		for _, t := range cc.Types {
			if !in.knownType(t) {
				rec := NewError("System.Management.Automation.RuntimeException", fmt.Sprintf("Unable to find type [%s].", t), "TypeNotFound", "InvalidOperation", t)
				return nil, &psError{rec: rec, kind: scriptTerminating}
			}
			if exceptionIs(in.cmds.exceptions, r.Exception.Type, t) {
				return cc, nil
			}
		}
	}
	return nil, nil
}

func (in *interp) execFlow(s *FlowStmt) ([]Value, error) {
	var val Value
	if s.Value != nil {
		out, err := in.runPipeline(s.Value)
		if err != nil {
			return nil, err
		}
		val = collapse(out)
	}
	switch s.Keyword {
	case "exit":
		code := 0
		if s.Value != nil {
			n, err := toInt(val)
			if err != nil {
				code = 1
			} else {
				code = int(int32(n))
			}
		}
		return nil, &flow{kind: "exit", code: code}
	case "return":
		var out []Value
		if s.Value != nil {
			out = exprOutput(val)
		}
		return out, &flow{kind: "return"}
	case "break", "continue":
		return nil, &flow{kind: s.Keyword}
	}
	// throw
	var rec *ErrorRecord
	switch x := val.(type) {
	case *ErrorRecord:
		rec = x
	case nil:
		if cur, ok := in.vars["_"].(*ErrorRecord); ok && s.Value == nil {
			rec = cur
		} else {
			rec = NewError("System.Management.Automation.RuntimeException", "ScriptHalted", "ScriptHalted", "OperationStopped", nil)
		}
	default:
		msg := ToString(val)
		rec = NewError("System.Management.Automation.RuntimeException", msg, msg, "OperationStopped", msg)
		rec.Target = val
	}
	rec.setExtent(s.Extent)
	return nil, &psError{rec: rec, kind: scriptTerminating}
}

// stmtValue is the value a statement gives an assignment, a hash literal
// entry or ( ): a lone expression keeps its value (so @() stays an empty
// array); anything else is its collected output.
func (in *interp) stmtValue(st Stmt) (Value, error) {
	if pl, ok := st.(*Pipeline); ok && len(pl.Elems) == 1 {
		if ee, ok := pl.Elems[0].(*ExprElem); ok {
			if err := in.step(); err != nil {
				return nil, err
			}
			v, err := in.eval(ee.X)
			if err != nil {
				return nil, err
			}
			in.lastOK = true
			if _, isVoid := v.(voidValue); isVoid {
				return nil, nil
			}
			return v, nil
		}
	}
	out, err := in.execStmt(st)
	if err != nil {
		return nil, err
	}
	return collapse(out), nil
}

func (in *interp) execAssign(s *AssignStmt) error {
	val, err := in.stmtValue(s.Value)
	if err != nil {
		return err
	}
	if s.Op != "=" {
		cur, err := in.eval(s.Target)
		if err != nil {
			return err
		}
		val, err = in.arith(s.Op[:1], cur, val, s.Extent)
		if err != nil {
			return err
		}
	}
	in.lastOK = true
	return in.assign(s.Target, val)
}

func runtimeError(ext Extent, id, category, format string, args ...any) *psError {
	r := NewError("System.Management.Automation.RuntimeException", fmt.Sprintf(format, args...), id, category, nil)
	r.setExtent(ext)
	return &psError{rec: r, kind: stmtTerminating}
}

func (in *interp) assign(target Expr, val Value) error {
	switch t := target.(type) {
	case *VarExpr:
		name := strings.ToLower(t.Name)
		if t.Drive == "env" {
			if val == nil {
				delete(in.env, name)
			} else {
				in.env[name] = ToString(val)
			}
			return nil
		}
		switch name {
		case "null":
			return nil
		case "true", "false", "?", "_", "psitem", "error":
			return runtimeError(t.Extent, "VariableNotWritable", "WriteError", "Cannot overwrite variable %s because it is read-only or constant.", t.Name)
		case "erroractionpreference", "progresspreference", "warningpreference":
			e, err := actionPreference.Parse(val)
			if err != nil {
				return runtimeError(t.Extent, "RuntimeException", "MetadataError", "Cannot convert value \"%s\" to type \"System.Management.Automation.ActionPreference\". Error: \"%s\"", ToString(val), err.Error())
			}
			val = e
		}
		in.vars[name] = val
		return nil
	case *CastExpr:
		cv, err := in.cast(t.Type, val, t.Extent)
		if err != nil {
			return err
		}
		return in.assign(t.X, cv)
	case *MemberExpr:
		obj, err := in.eval(t.X)
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case *Hashtable:
			o.Set(t.Name, val)
			return nil
		case *Object:
			if _, ok := o.Get(t.Name); ok {
				o.Set(t.Name, val)
				return nil
			}
		case nil:
			return runtimeError(t.Extent, "PropertyNotFound", "InvalidOperation", "The property '%s' cannot be found on this object. Verify that the property exists and can be set.", t.Name)
		}
		return runtimeError(t.Extent, "PropertyNotFound", "InvalidOperation", "The property '%s' cannot be found on this object. Verify that the property exists and can be set.", t.Name)
	case *IndexExpr:
		obj, err := in.eval(t.X)
		if err != nil {
			return err
		}
		idx, err := in.eval(t.Index)
		if err != nil {
			return err
		}
		switch o := obj.(type) {
		case *Hashtable:
			o.Set(ToString(idx), val)
			return nil
		case []Value:
			n, err := toInt(idx)
			if err != nil {
				return runtimeError(t.Extent, "InvalidCastFromStringToInteger", "InvalidArgument", "%s", err.Error())
			}
			if n < 0 {
				n += int64(len(o))
			}
			if n < 0 || n >= int64(len(o)) {
				return runtimeError(t.Extent, "IndexOutOfRange", "InvalidOperation", "Index was outside the bounds of the array.")
			}
			o[n] = val
			return nil
		case nil:
			return runtimeError(t.Extent, "NullArray", "InvalidOperation", "Cannot index into a null array.")
		}
		return runtimeError(t.Extent, "CannotIndex", "InvalidOperation", "Unable to index into an object of type %s.", TypeNameOf(obj))
	}
	return runtimeError(target.extent(), "InvalidLeftHandSide", "ParserError", "The assignment expression is not valid.")
}

// exprOutput is what an expression writes to the pipeline: arrays are
// enumerated one level, anything else (including $null) is one object.
func exprOutput(v Value) []Value {
	switch x := v.(type) {
	case []Value:
		return x
	case voidValue:
		return nil
	}
	return []Value{v}
}

// voidValue is the result of a [void] cast: nothing is written.
type voidValue struct{}

func (in *interp) runPipeline(pl *Pipeline) ([]Value, error) {
	var items []Value
	for i, el := range pl.Elems {
		switch e := el.(type) {
		case *ExprElem:
			v, err := in.eval(e.X)
			if err != nil {
				return nil, err
			}
			items = exprOutput(v)
			in.lastOK = true
		case *Command:
			out, err := in.invoke(e, items, i > 0)
			if err != nil {
				return out, err
			}
			items = out
		}
	}
	return items, nil
}

func (in *interp) invoke(c *Command, input []Value, piped bool) ([]Value, error) {
	if err := in.step(); err != nil {
		return nil, err
	}
	cmd, ok := in.cmds.Lookup(c.Name)
	if !ok {
		r := NewError("System.Management.Automation.CommandNotFoundException",
			fmt.Sprintf("The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", c.Name),
			"CommandNotFoundException", "ObjectNotFound", c.Name)
		r.setExtent(c.NameExt)
		r.prefix = c.Name + " : "
		in.lastOK = false
		return nil, &psError{rec: r, kind: stmtTerminating}
	}
	b, err := in.bindStatic(cmd, c)
	if err != nil {
		in.lastOK = false
		return nil, in.withInvocation(err, c, cmd)
	}
	call := &Call{Ctx: in.ctx, Cmd: cmd, in: in, ast: c, Now: in.now}
	if ea, ok := b.args["ErrorAction"].(Enum); ok {
		call.ea = ea.Name
	}
	if cmd.HighImpact {
		if conf, set := b.args["Confirm"]; !set || IsTrue(conf) {
			if !IsTrue(b.args["WhatIf"]) {
				r := NewError("System.Management.Automation.Host.HostException",
					"Windows PowerShell is in NonInteractive mode. Read and Prompt functionality is not available.",
					"HostFunctionNotImplemented", "ResourceUnavailable", nil)
				in.lastOK = false
				return nil, in.withInvocation(&psError{rec: r, kind: stmtTerminating}, c, cmd)
			}
		}
	}
	var out []Value
	run := func(args map[string]Value, item Value, hasItem bool) error {
		set, err := resolveSet(cmd, args)
		if err != nil {
			return err
		}
		call.Args, call.Set, call.Item, call.HasItem = args, set, item, hasItem
		call.out = nil
		err = cmd.Process(call)
		out = append(out, call.out...)
		return err
	}
	if cmd.WholeInput || !piped {
		call.Input = input
		err = run(b.args, nil, false)
	} else {
		for _, item := range input {
			if err = in.step(); err != nil {
				break
			}
			args := make(map[string]Value, len(b.args)+1)
			for k, v := range b.args {
				args[k] = v
			}
			if !bindPipeline(cmd, args, item) {
				r := NewError("System.Management.Automation.ParameterBindingException",
					"The input object cannot be bound to any parameters for the command either because the command does not take pipeline input or the input and its properties do not match any of the parameters that take pipeline input.",
					"InputObjectNotBound", "InvalidArgument", item)
				r.Command, r.Activity = cmd.Class, cmd.Name
				r.setExtent(c.Extent)
				r.prefix = cmd.Name + " : "
				if err = call.WriteError(r); err != nil {
					break
				}
				continue
			}
			if err = run(args, item, true); err != nil {
				break
			}
		}
		if err == nil && cmd.End != nil {
			call.out = nil
			err = cmd.End(call)
			out = append(out, call.out...)
		}
	}
	if err != nil {
		in.lastOK = false
		return out, in.withInvocation(err, c, cmd)
	}
	in.lastOK = !call.bad
	return out, nil
}

// withInvocation attaches the command position and "Name : " prefix.
func (in *interp) withInvocation(err error, c *Command, cmd *Cmdlet) error {
	var pe *psError
	if errors.As(err, &pe) {
		pe.rec.setExtent(c.Extent)
		if pe.rec.prefix == "" && pe.rec.Category != "ParserError" {
			pe.rec.prefix = cmd.Name + " : "
		}
		if pe.rec.Command == "" {
			pe.rec.Command = cmd.Class
		}
		if pe.rec.Activity == "" {
			pe.rec.Activity = cmd.Name
		}
	}
	return err
}

// invokeBlock runs a script block with $_ bound to item, as ForEach-Object,
// Where-Object and calculated properties do. Variables it sets persist, as
// with a dot-sourced block.
func (in *interp) invokeBlock(sb *ScriptBlock, item Value) ([]Value, error) {
	saved, had := in.vars["_"]
	in.vars["_"], in.vars["psitem"] = item, item
	defer func() {
		if had {
			in.vars["_"], in.vars["psitem"] = saved, saved
		} else {
			delete(in.vars, "_")
			delete(in.vars, "psitem")
		}
	}()
	out, err := in.execList(sb.Body, nil)
	var f *flow
	if errors.As(err, &f) && f.kind == "return" {
		return out, nil
	}
	return out, err
}
