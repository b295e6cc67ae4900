package ps

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseError is a PowerShell ParserError: the script is rejected before any
// of it runs, as powershell.exe does.
type ParseError struct {
	Extent
	ID      string // FullyQualifiedErrorId, e.g. MissingEndParenthesisInExpression
	Message string
}

func (e *ParseError) Error() string { return e.Message }

// maxDepth bounds nesting so a hostile script cannot overflow the Go stack;
// real PowerShell has a similar guard ("script is too complex").
const maxDepth = 200

type parser struct {
	src   string
	i     int
	depth int
}

// Parse parses a script of the subset documented in POWERSHELL.md.
func Parse(src string) (list StatementList, err error) {
	p := &parser{src: src}
	defer func() {
		if r := recover(); r != nil {
			pe, ok := r.(*ParseError)
			if !ok {
				panic(r)
			}
			list, err = nil, pe
		}
	}()
	list = p.statementList(0)
	p.skipSpaceNL()
	if !p.eof() {
		p.unexpected()
	}
	return list, nil
}

func (p *parser) fail(start, end int, id, format string, args ...any) {
	if end < start {
		end = start
	}
	panic(&ParseError{Extent: Extent{start, end}, ID: id, Message: fmt.Sprintf(format, args...)})
}

func (p *parser) enter() {
	p.depth++
	if p.depth > maxDepth {
		p.fail(p.i, p.i, "ScriptTooComplex", "The script is too complex: expressions are nested more than %d levels deep.", maxDepth)
	}
}

func (p *parser) leave() { p.depth-- }

func (p *parser) eof() bool { return p.i >= len(p.src) }

func (p *parser) peek() byte {
	if p.i < len(p.src) {
		return p.src[p.i]
	}
	return 0
}

func (p *parser) peekAt(k int) byte {
	if p.i+k < len(p.src) {
		return p.src[p.i+k]
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80 }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isNameChar(c byte) bool { return isLetter(c) || isDigit(c) || c == '_' }

// skipSpace skips blanks, comments and line continuations, not newlines.
func (p *parser) skipSpace() {
	for !p.eof() {
		c := p.peek()
		switch {
		case isSpace(c):
			p.i++
		case c == '`' && (p.peekAt(1) == '\n' || p.peekAt(1) == '\r' && p.peekAt(2) == '\n'):
			p.i++
			if p.peek() == '\r' {
				p.i++
			}
			p.i++
		case c == '#':
			for !p.eof() && p.peek() != '\n' {
				p.i++
			}
		case c == '<' && p.peekAt(1) == '#':
			start := p.i
			end := strings.Index(p.src[p.i+2:], "#>")
			if end < 0 {
				p.fail(start, len(p.src), "MissingEndOfBlockComment", "The '<#' block comment is missing its terminator '#>'.")
			}
			p.i += 2 + end + 2
		default:
			return
		}
	}
}

func (p *parser) skipSpaceNL() {
	for {
		p.skipSpace()
		if p.peek() == '\n' {
			p.i++
			continue
		}
		return
	}
}

// word returns the run of name characters at the cursor without consuming it.
func (p *parser) word() string {
	j := p.i
	for j < len(p.src) && (isNameChar(p.src[j]) || p.src[j] == '-') {
		j++
	}
	return p.src[p.i:j]
}

// tokenText returns a short rendering of the token at the cursor for
// "Unexpected token" messages.
func (p *parser) tokenText() string {
	if p.eof() {
		return ""
	}
	j := p.i
	c := p.src[j]
	if isNameChar(c) || c == '-' || c == '$' {
		j++
		for j < len(p.src) && (isNameChar(p.src[j]) || p.src[j] == '-' || p.src[j] == ':' || p.src[j] == '.') {
			j++
		}
		return p.src[p.i:j]
	}
	return string(c)
}

func (p *parser) unexpected() {
	t := p.tokenText()
	p.fail(p.i, p.i+len(t), "UnexpectedToken", "Unexpected token '%s' in expression or statement.", t)
}

var unsupportedKeywords = map[string]bool{
	"while": true, "for": true, "do": true, "switch": true, "function": true, "filter": true,
	"param": true, "trap": true, "class": true, "enum": true, "using": true, "workflow": true,
	"configuration": true, "data": true,
}

// statementList parses statements until EOF or the closing byte (not consumed).
func (p *parser) statementList(closer byte) StatementList {
	var list StatementList
	for {
		for {
			p.skipSpaceNL()
			if p.peek() == ';' {
				p.i++
				continue
			}
			break
		}
		if p.eof() || closer != 0 && p.peek() == closer {
			return list
		}
		list = append(list, p.statement())
		p.skipSpace()
		switch c := p.peek(); {
		case c == ';' || c == '\n':
			p.i++
		case p.eof() || closer != 0 && c == closer:
		default:
			if c == '>' || c == '<' || isDigit(c) && p.peekAt(1) == '>' || c == '*' && p.peekAt(1) == '>' {
				p.redirection()
			}
			if c == '|' && p.peekAt(1) == '|' || c == '&' && p.peekAt(1) == '&' {
				p.fail(p.i, p.i+2, "InvalidEndOfLine", "The token '%s' is not a valid statement separator in this version.", p.src[p.i:p.i+2])
			}
			p.unexpected()
		}
	}
}

func (p *parser) redirection() {
	start := p.i
	if p.peek() == '<' {
		p.fail(start, start+1, "RedirectionNotSupported", "The '<' operator is reserved for future use.")
	}
	p.fail(start, start+1, "EmulatorUnsupportedRedirection", "Redirection operators are not supported by the Hyper-V emulator (see POWERSHELL.md); use | Out-Null or $null = ... instead.")
}

func (p *parser) statement() Stmt {
	p.enter()
	defer p.leave()
	start := p.i
	w := strings.ToLower(p.word())
	switch w {
	case "if":
		return p.ifStmt()
	case "foreach":
		return p.foreachStmt()
	case "try":
		return p.tryStmt()
	case "throw", "exit", "return":
		p.i += len(w)
		fs := &FlowStmt{Keyword: w}
		p.skipSpace()
		if !p.atStatementEnd() {
			fs.Value = p.pipeline(true)
		}
		fs.Extent = Extent{start, p.i}
		return fs
	case "break", "continue":
		p.i += len(w)
		return &FlowStmt{Extent: Extent{start, p.i}, Keyword: w}
	case "elseif", "else", "catch", "finally":
		p.fail(start, start+len(w), "UnexpectedToken", "Unexpected token '%s' in expression or statement.", p.src[start:start+len(w)])
	}
	if unsupportedKeywords[w] {
		p.fail(start, start+len(w), "EmulatorUnsupportedKeyword", "The '%s' keyword is not supported by the Hyper-V emulator (see POWERSHELL.md).", w)
	}
	return p.pipelineOrAssignment()
}

func (p *parser) atStatementEnd() bool {
	c := p.peek()
	return p.eof() || c == ';' || c == '\n' || c == '}' || c == ')'
}

func (p *parser) pipelineOrAssignment() Stmt {
	start := p.i
	pl := p.pipeline(false)
	p.skipSpace()
	op := p.assignOp()
	if op == "" {
		return pl
	}
	if len(pl.Elems) != 1 {
		p.fail(p.i, p.i+len(op), "InvalidLeftHandSide", "The assignment expression is not valid. The input to an assignment operator must be an object that is able to accept assignments, such as a variable or a property.")
	}
	ee, ok := pl.Elems[0].(*ExprElem)
	if !ok || !assignable(ee.X) {
		p.fail(start, p.i, "InvalidLeftHandSide", "The assignment expression is not valid. The input to an assignment operator must be an object that is able to accept assignments, such as a variable or a property.")
	}
	opPos := p.i
	p.i += len(op)
	p.skipSpaceNL()
	if p.atStatementEnd() {
		p.fail(opPos, opPos+len(op), "ExpectedValueExpression", "You must provide a value expression on the right-hand side of the '%s' operator.", op)
	}
	var rhs Stmt
	switch strings.ToLower(p.word()) {
	case "if", "foreach", "try":
		rhs = p.statement()
	default:
		rhs = p.pipelineOrAssignment()
	}
	return &AssignStmt{Extent: Extent{start, p.i}, Target: ee.X, Op: op, Value: rhs}
}

func assignable(x Expr) bool {
	switch t := x.(type) {
	case *VarExpr, *MemberExpr, *IndexExpr:
		return true
	case *CastExpr:
		_, ok := t.X.(*VarExpr)
		return ok
	}
	return false
}

func (p *parser) assignOp() string {
	c, n := p.peek(), p.peekAt(1)
	switch {
	case c == '=' && n != '=':
		return "="
	case (c == '+' || c == '-' || c == '*' || c == '/' || c == '%') && n == '=':
		return string(c) + "="
	}
	return ""
}

// pipeline parses elements joined by |. valueOnly is used after throw/exit
// where an assignment cannot follow.
func (p *parser) pipeline(valueOnly bool) *Pipeline {
	start := p.i
	pl := &Pipeline{}
	for first := true; ; first = false {
		p.skipSpace()
		if p.atStatementEnd() || p.peek() == '|' {
			if first && p.peek() != '|' {
				p.fail(p.i, p.i, "ExpectedExpression", "An expression was expected after '('.")
			}
			p.fail(p.i, p.i+1, "EmptyPipeElement", "An empty pipe element is not allowed.")
		}
		pl.Elems = append(pl.Elems, p.pipeElement(first))
		p.skipSpace()
		if p.peek() == '|' && p.peekAt(1) != '|' {
			p.i++
			p.skipSpaceNL()
			if p.atStatementEnd() || p.peek() == '|' {
				p.fail(p.i, p.i+1, "EmptyPipeElement", "An empty pipe element is not allowed.")
			}
			continue
		}
		break
	}
	pl.Extent = Extent{start, p.i}
	return pl
}

func (p *parser) expressionStart() bool {
	c, n := p.peek(), p.peekAt(1)
	switch {
	case c == '$' || c == '(' || c == '@' || c == '\'' || c == '"' || c == '[' || c == '!' || c == '{':
		return true
	case isDigit(c) || c == '.' && isDigit(n):
		return true
	case (c == '-' || c == '+') && (isDigit(n) || n == '.' || n == c):
		return true
	case c == ',':
		return true
	case c == '-':
		op := strings.ToLower(p.dashWord())
		return op == "-not" || op == "-bnot" || op == "-join" || op == "-split"
	}
	return false
}

func (p *parser) pipeElement(first bool) PipeElem {
	start := p.i
	if p.expressionStart() {
		if !first {
			p.fail(start, start+len(p.tokenText()), "ExpressionsMustBeFirstInPipeline", "Expressions are only allowed as the first element of a pipeline.")
		}
		x := p.expression()
		return &ExprElem{Extent: Extent{start, p.i}, X: x}
	}
	return p.command()
}

// command parses a command name and its elements.
func (p *parser) command() *Command {
	start := p.i
	c := p.peek()
	if c == '&' || c == '.' && (isSpace(p.peekAt(1)) || p.peekAt(1) == '$' || p.peekAt(1) == '\'' || p.peekAt(1) == '"') {
		p.fail(start, start+1, "EmulatorUnsupportedOperator", "The '%c' invocation operator is not supported by the Hyper-V emulator (see POWERSHELL.md).", c)
	}
	name := p.genericToken()
	if name == "" {
		p.unexpected()
	}
	cmd := &Command{Name: name, NameExt: Extent{start, p.i}}
	for {
		p.skipSpace()
		c := p.peek()
		if p.atStatementEnd() || c == '|' {
			break
		}
		if c == '>' || c == '<' || isDigit(c) && p.peekAt(1) == '>' || c == '*' && p.peekAt(1) == '>' {
			p.redirection()
		}
		estart := p.i
		if c == '-' && (isLetter(p.peekAt(1)) || p.peekAt(1) == '_' || p.peekAt(1) == '?') {
			p.i++
			j := p.i
			for !p.eof() && (isNameChar(p.peek()) || p.peek() == '?' || p.peek() == '-') {
				p.i++
			}
			el := CommandElement{Param: p.src[j:p.i]}
			if p.peek() == ':' {
				p.i++
				el.HasColon = true
				if p.atStatementEnd() || isSpace(p.peek()) || p.peek() == '|' {
					p.fail(estart, p.i, "ParameterRequiresArgument", "The parameter '%s' requires an argument.", p.src[estart:p.i-1])
				}
				el.ColonArg = p.argumentValue()
			}
			el.Extent = Extent{estart, p.i}
			cmd.Elements = append(cmd.Elements, el)
			continue
		}
		arg := p.argument()
		cmd.Elements = append(cmd.Elements, CommandElement{Extent: Extent{estart, p.i}, Arg: arg})
	}
	cmd.Extent = Extent{start, p.i}
	return cmd
}

func isGenericTerminator(c byte) bool {
	return isSpace(c) || c == '\n' || c == ';' || c == '|' || c == ')' || c == '}' || c == '(' || c == '{' ||
		c == ',' || c == '\'' || c == '"' || c == '&' || c == '<' || c == '>' || c == 0
}

// genericToken reads a bareword (command names, unquoted arguments).
func (p *parser) genericToken() string {
	j := p.i
	for !p.eof() && !isGenericTerminator(p.peek()) {
		if p.peek() == '`' && p.i+1 < len(p.src) {
			p.i += 2
			continue
		}
		p.i++
	}
	return p.src[j:p.i]
}

// argument parses one command argument, including a comma list.
func (p *parser) argument() Expr {
	start := p.i
	first := p.argumentValue()
	p.skipSpace()
	if p.peek() != ',' {
		return first
	}
	elems := []Expr{first}
	for p.peek() == ',' {
		comma := p.i
		p.i++
		p.skipSpaceNL()
		if p.atStatementEnd() || p.peek() == '|' || p.peek() == ',' {
			p.fail(comma, comma+1, "MissingExpression", "Missing expression after ','.")
		}
		elems = append(elems, p.argumentValue())
		p.skipSpace()
	}
	return &ArrayLit{Extent: Extent{start, p.i}, Elems: elems}
}

func (p *parser) argumentValue() Expr {
	start := p.i
	switch c := p.peek(); c {
	case '$', '(', '@', '\'', '"', '{':
		return p.postfix(p.primary())
	}
	tok := p.genericToken()
	if tok == "" {
		p.unexpected()
	}
	if n, ok := parseNumber(tok); ok {
		return &NumberLit{Extent: Extent{start, p.i}, Value: n}
	}
	if strings.ContainsRune(tok, '$') {
		// An unquoted argument with a variable in it expands like "...".
		sub := &parser{src: p.src, i: start, depth: p.depth}
		parts := sub.expandParts(p.i)
		return &ExpandString{Extent: Extent{start, p.i}, Parts: parts}
	}
	return &StringLit{Extent: Extent{start, p.i}, Value: unescapeBare(tok), Bare: true}
}

func unescapeBare(s string) string {
	if !strings.ContainsRune(s, '`') {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '`' && i+1 < len(s) {
			i++
			b.WriteString(backtickEscape(s[i]))
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func backtickEscape(c byte) string {
	switch c {
	case '0':
		return "\x00"
	case 'a':
		return "\a"
	case 'b':
		return "\b"
	case 'f':
		return "\f"
	case 'n':
		return "\n"
	case 'r':
		return "\r"
	case 't':
		return "\t"
	case 'v':
		return "\v"
	}
	return string(c)
}

// parseNumber parses PowerShell numeric literals: 42, 0x1F, 1.5, 1e3, 10kb, 5L.
func parseNumber(s string) (Value, bool) {
	if s == "" {
		return nil, false
	}
	neg := false
	t := s
	if t[0] == '-' || t[0] == '+' {
		neg = t[0] == '-'
		t = t[1:]
	}
	if t == "" || !(isDigit(t[0]) || t[0] == '.' && len(t) > 1 && isDigit(t[1])) {
		return nil, false
	}
	mult := int64(1)
	lt := strings.ToLower(t)
	for _, m := range []struct {
		suffix string
		v      int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"tb", 1 << 40}, {"pb", 1 << 50}} {
		if strings.HasSuffix(lt, m.suffix) {
			mult = m.v
			t = t[:len(t)-2]
			lt = lt[:len(lt)-2]
			break
		}
	}
	if strings.HasSuffix(lt, "l") && !strings.HasPrefix(lt, "0x") {
		t = t[:len(t)-1]
	}
	if strings.HasPrefix(lt, "0x") {
		n, err := strconv.ParseInt(t[2:], 16, 64)
		if err != nil {
			u, err2 := strconv.ParseUint(t[2:], 16, 64)
			if err2 != nil {
				return nil, false
			}
			n = int64(u)
		}
		if neg {
			n = -n
		}
		return n * mult, true
	}
	if n, err := strconv.ParseInt(t, 10, 64); err == nil {
		if neg {
			n = -n
		}
		if mult != 1 && (n > math.MaxInt64/mult || n < math.MinInt64/mult) {
			return nil, false
		}
		return n * mult, true
	}
	f, err := strconv.ParseFloat(t, 64)
	if err != nil || strings.ContainsAny(t, "xXpP_") || strings.HasPrefix(lt, "inf") || strings.HasPrefix(lt, "nan") {
		return nil, false
	}
	if neg {
		f = -f
	}
	return f * float64(mult), true
}

// ---- expressions ----

func (p *parser) expression() Expr { return p.logical(true) }

// dashWord returns "-word" at the cursor (or "").
func (p *parser) dashWord() string {
	if p.peek() != '-' {
		return ""
	}
	j := p.i + 1
	for j < len(p.src) && isLetter(p.src[j]) {
		j++
	}
	if j == p.i+1 {
		return ""
	}
	return p.src[p.i:j]
}

var comparisonOps = map[string]bool{}

func init() {
	for _, base := range []string{"eq", "ne", "gt", "ge", "lt", "le", "like", "notlike", "match", "notmatch", "contains", "notcontains", "in", "notin", "replace", "split"} {
		comparisonOps["-"+base] = true
		comparisonOps["-i"+base] = true
		comparisonOps["-c"+base] = true
	}
	for _, op := range []string{"-is", "-isnot", "-as", "-join"} {
		comparisonOps[op] = true
	}
}

type levelFunc func(p *parser, allowComma bool) Expr

func (p *parser) binaryLevel(allowComma bool, next levelFunc, match func(op string) bool) Expr {
	start := p.i
	l := next(p, allowComma)
	for {
		save := p.i
		p.skipSpace()
		op := strings.ToLower(p.dashWord())
		if op == "" || !match(op) {
			p.i = save
			return l
		}
		opExt := Extent{p.i, p.i + len(op)}
		p.i += len(op)
		p.skipSpaceNL()
		if !p.valueAhead() {
			p.fail(opExt.Start, opExt.End, "ExpectedValueExpression", "You must provide a value expression following the '%s' operator.", op)
		}
		r := next(p, allowComma)
		caseOp := len(op) > 2 && op[1] == 'c' && comparisonOps[op] && op != "-contains"
		norm := op
		if len(op) > 2 && (op[1] == 'c' || op[1] == 'i') && comparisonOps["-"+op[2:]] && op != "-contains" && op != "-in" && op != "-is" && op != "-isnot" {
			norm = "-" + op[2:]
		}
		l = &BinaryExpr{Extent: Extent{start, p.i}, Op: norm, OpExt: opExt, L: l, R: r, CaseOp: caseOp}
	}
}

// valueAhead reports whether an operand can start at the cursor.
func (p *parser) valueAhead() bool {
	if p.eof() {
		return false
	}
	c := p.peek()
	switch c {
	case ';', '\n', ')', '}', '|', ',', '=':
		return false
	}
	if c == '-' {
		w := strings.ToLower(p.dashWord())
		if w != "" && w != "-not" && w != "-bnot" && w != "-join" && w != "-split" {
			return false
		}
	}
	if isLetter(c) || c == '_' {
		return false // a bareword cannot be an operand in expression mode
	}
	return true
}

func logicalNext(p *parser, c bool) Expr { return p.bitwise(c) }
func bitwiseNext(p *parser, c bool) Expr { return p.comparison(c) }

func (p *parser) logical(allowComma bool) Expr {
	p.enter()
	defer p.leave()
	return p.binaryLevel(allowComma, logicalNext, func(op string) bool { return op == "-and" || op == "-or" || op == "-xor" })
}

func (p *parser) bitwise(allowComma bool) Expr {
	return p.binaryLevel(allowComma, bitwiseNext, func(op string) bool {
		return op == "-band" || op == "-bor" || op == "-bxor" || op == "-shl" || op == "-shr"
	})
}

func (p *parser) comparison(allowComma bool) Expr {
	return p.binaryLevel(allowComma, func(p *parser, c bool) Expr { return p.additive(c) }, func(op string) bool { return comparisonOps[op] })
}

func (p *parser) additive(allowComma bool) Expr {
	return p.symbolLevel(allowComma, func(p *parser, c bool) Expr { return p.multiplicative(c) }, func(c, n byte) bool {
		return (c == '+' || c == '-') && n != '=' && !(c == '-' && isLetter(n)) && c != n
	})
}

func (p *parser) multiplicative(allowComma bool) Expr {
	return p.symbolLevel(allowComma, func(p *parser, c bool) Expr { return p.format(c) }, func(c, n byte) bool {
		return (c == '*' || c == '/' || c == '%') && n != '=' && !(c == '*' && n == '>')
	})
}

// symbolLevel parses a left-associative level of one-character operators;
// isOp sees the operator candidate and the character after it.
func (p *parser) symbolLevel(allowComma bool, next levelFunc, isOp func(c, n byte) bool) Expr {
	start := p.i
	l := next(p, allowComma)
	for {
		save := p.i
		p.skipSpace()
		c := p.peek()
		if !isOp(c, p.peekAt(1)) {
			p.i = save
			return l
		}
		opExt := Extent{p.i, p.i + 1}
		p.i++
		p.skipSpaceNL()
		if !p.valueAhead() {
			p.fail(opExt.Start, opExt.End, "ExpectedValueExpression", "You must provide a value expression following the '%c' operator.", c)
		}
		r := next(p, allowComma)
		l = &BinaryExpr{Extent: Extent{start, p.i}, Op: string(c), OpExt: opExt, L: l, R: r}
	}
}

func (p *parser) format(allowComma bool) Expr {
	return p.binaryLevel(allowComma, func(p *parser, c bool) Expr { return p.rangeExpr(c) }, func(op string) bool { return op == "-f" })
}

func (p *parser) rangeExpr(allowComma bool) Expr {
	start := p.i
	l := p.arrayLiteral(allowComma)
	save := p.i
	p.skipSpace()
	if p.peek() == '.' && p.peekAt(1) == '.' {
		opExt := Extent{p.i, p.i + 2}
		p.i += 2
		p.skipSpaceNL()
		if !p.valueAhead() {
			p.fail(opExt.Start, opExt.End, "ExpectedValueExpression", "You must provide a value expression following the '..' operator.")
		}
		r := p.arrayLiteral(allowComma)
		return &BinaryExpr{Extent: Extent{start, p.i}, Op: "..", OpExt: opExt, L: l, R: r}
	}
	p.i = save
	return l
}

func (p *parser) arrayLiteral(allowComma bool) Expr {
	start := p.i
	first := p.unary()
	if !allowComma {
		return first
	}
	save := p.i
	p.skipSpace()
	if p.peek() != ',' {
		p.i = save
		return first
	}
	elems := []Expr{first}
	for {
		p.skipSpace()
		if p.peek() != ',' {
			break
		}
		comma := p.i
		p.i++
		p.skipSpaceNL()
		if !p.valueAhead() {
			p.fail(comma, comma+1, "MissingExpression", "Missing expression after ','.")
		}
		elems = append(elems, p.unary())
	}
	return &ArrayLit{Extent: Extent{start, p.i}, Elems: elems}
}

func (p *parser) unary() Expr {
	p.enter()
	defer p.leave()
	start := p.i
	c := p.peek()
	switch {
	case c == ',':
		// Unary comma: a one-element array.
		p.i++
		p.skipSpaceNL()
		x := p.unaryOperand(",", start)
		return &ArrayLit{Extent: Extent{start, p.i}, Elems: []Expr{x}}
	case c == '!':
		p.i++
		p.skipSpaceNL()
		return &UnaryExpr{Extent: Extent{start, p.i}, Op: "-not", X: p.unaryOperand("!", start)}
	case c == '-' && (isDigit(p.peekAt(1)) || p.peekAt(1) == '.' && isDigit(p.peekAt(2))):
		p.i++
		x := p.unary()
		if n, ok := x.(*NumberLit); ok {
			switch v := n.Value.(type) {
			case int64:
				n.Value = -v
			case float64:
				n.Value = -v
			}
			n.Start = start
			return n
		}
		return &UnaryExpr{Extent: Extent{start, p.i}, Op: "-", X: x}
	case c == '-' && p.peekAt(1) == '-' || c == '+' && p.peekAt(1) == '+':
		p.fail(start, start+2, "EmulatorUnsupportedOperator", "The '%s' operator is not supported by the Hyper-V emulator (see POWERSHELL.md).", p.src[start:start+2])
	case c == '-' || c == '+':
		if c == '-' {
			if w := strings.ToLower(p.dashWord()); w != "" {
				switch w {
				case "-not", "-bnot", "-join", "-split":
					p.i += len(w)
					p.skipSpaceNL()
					return &UnaryExpr{Extent: Extent{start, p.i}, Op: w, X: p.unaryOperand(w, start)}
				}
				p.unexpected()
			}
		}
		p.i++
		p.skipSpaceNL()
		return &UnaryExpr{Extent: Extent{start, p.i}, Op: string(c), X: p.unaryOperand(string(c), start)}
	case c == '[':
		typ, ext := p.typeLiteral()
		save := p.i
		p.skipSpace()
		if p.peek() == ':' && p.peekAt(1) == ':' {
			p.i = save
			return p.postfix(&TypeExpr{Extent: ext, Type: typ})
		}
		if p.castOperandAhead() {
			x := p.unary()
			return &CastExpr{Extent: Extent{start, p.i}, Type: typ, X: x}
		}
		p.i = save
		return p.postfix(&TypeExpr{Extent: ext, Type: typ})
	}
	return p.postfix(p.primary())
}

func (p *parser) unaryOperand(op string, start int) Expr {
	if !p.valueAhead() {
		p.fail(start, start+len(op), "MissingExpressionAfterOperator", "Missing expression after unary operator '%s'.", op)
	}
	return p.unary()
}

// castOperandAhead reports whether [type] is followed by an operand (a cast)
// rather than standing alone.
func (p *parser) castOperandAhead() bool {
	c := p.peek()
	switch c {
	case '$', '(', '@', '\'', '"', '[', '!', '{':
		return true
	case '-', '+':
		return isDigit(p.peekAt(1)) || strings.EqualFold(p.dashWord(), "-not")
	}
	return isDigit(c)
}

func (p *parser) typeLiteral() (string, Extent) {
	start := p.i
	p.i++ // [
	p.skipSpace()
	j := p.i
	depth := 0
	for !p.eof() {
		c := p.peek()
		if c == '[' {
			depth++
		} else if c == ']' {
			if depth == 0 {
				break
			}
			depth--
		} else if !(isNameChar(c) || c == '.' || c == ',' || c == '`' || c == '+') {
			break
		}
		p.i++
	}
	name := strings.TrimSpace(p.src[j:p.i])
	if name == "" {
		p.fail(start, start+1, "MissingTypename", "Missing type name after '['.")
	}
	if p.peek() != ']' {
		p.fail(p.i, p.i, "EndSquareBracketExpectedAtEndOfType", "Missing ] at end of type token.")
	}
	p.i++
	return name, Extent{start, p.i}
}

func (p *parser) postfix(x Expr) Expr {
	start := x.extent().Start
	for {
		c := p.peek()
		switch {
		case c == '.' && p.peekAt(1) != '.' && (isLetter(p.peekAt(1)) || p.peekAt(1) == '_' || p.peekAt(1) == '\'' || p.peekAt(1) == '"'):
			p.i++
			x = p.memberOrInvoke(x, start, false)
		case c == ':' && p.peekAt(1) == ':':
			p.i += 2
			x = p.memberOrInvoke(x, start, true)
		case c == '[':
			open := p.i
			p.i++
			p.skipSpaceNL()
			if p.peek() == ']' {
				p.fail(open, open+1, "MissingArrayIndexExpression", "Array index expression is missing or not valid.")
			}
			idx := p.expression()
			p.skipSpaceNL()
			if p.peek() != ']' {
				p.fail(p.i, p.i, "MissingEndSquareBracket", "Missing ']' after array index expression.")
			}
			p.i++
			x = &IndexExpr{Extent: Extent{start, p.i}, X: x, Index: idx}
		default:
			return x
		}
	}
}

func (p *parser) memberOrInvoke(x Expr, start int, static bool) Expr {
	var name string
	switch p.peek() {
	case '\'', '"':
		s := p.primary()
		lit, ok := s.(*StringLit)
		if !ok {
			p.fail(s.extent().Start, s.extent().End, "EmulatorUnsupportedMember", "Dynamic member names are not supported by the Hyper-V emulator (see POWERSHELL.md).")
		}
		name = lit.Value
	default:
		j := p.i
		for !p.eof() && isNameChar(p.peek()) {
			p.i++
		}
		name = p.src[j:p.i]
		if name == "" {
			p.fail(j, j, "MissingPropertyName", "Missing property name after reference operator.")
		}
	}
	if p.peek() != '(' {
		return &MemberExpr{Extent: Extent{start, p.i}, X: x, Name: name, Static: static}
	}
	open := p.i
	p.i++
	var args []Expr
	p.skipSpaceNL()
	if p.peek() != ')' {
		for {
			p.skipSpaceNL()
			if !p.valueAhead() {
				p.fail(p.i, p.i, "MissingExpressionAfterToken", "Missing argument in parameter list.")
			}
			args = append(args, p.logical(false))
			p.skipSpaceNL()
			if p.peek() == ',' {
				p.i++
				continue
			}
			break
		}
	}
	if p.peek() != ')' {
		p.fail(open, p.i, "MissingEndParenthesisInMethodCall", "Missing closing ')' in expression.")
	}
	p.i++
	return &InvokeExpr{Extent: Extent{start, p.i}, X: x, Name: name, Args: args, Static: static}
}

func (p *parser) primary() Expr {
	p.enter()
	defer p.leave()
	start := p.i
	c := p.peek()
	switch {
	case c == '$':
		return p.variable(false)
	case c == '\'':
		return p.singleQuoted()
	case c == '"':
		return p.doubleQuoted()
	case c == '@' && p.peekAt(1) == '(':
		p.i += 2
		body := p.statementList(')')
		if p.peek() != ')' {
			p.fail(start, p.i, "MissingEndParenthesisInSubexpression", "Missing closing ')' in subexpression.")
		}
		p.i++
		return &ArraySubExpr{Extent: Extent{start, p.i}, Body: body}
	case c == '@' && p.peekAt(1) == '{':
		return p.hashLiteral()
	case c == '@' && (p.peekAt(1) == '"' || p.peekAt(1) == '\''):
		p.fail(start, start+2, "EmulatorUnsupportedHereString", "Here-strings are not supported by the Hyper-V emulator (see POWERSHELL.md).")
	case c == '@':
		p.fail(start, start+1, "UnrecognizedToken", "Unrecognized token in source text.")
	case c == '(':
		p.i++
		p.skipSpaceNL()
		if p.peek() == ')' {
			p.fail(start, p.i+1, "ExpectedExpression", "An expression was expected after '('.")
		}
		var body Stmt
		switch strings.ToLower(p.word()) {
		case "if", "foreach", "try", "throw", "exit", "return", "break", "continue":
			body = p.statement()
		default:
			body = p.pipelineOrAssignment()
		}
		p.skipSpaceNL()
		if p.peek() != ')' {
			if p.eof() || p.peek() == '}' || p.peek() == ';' {
				p.fail(p.i, p.i, "MissingEndParenthesisInExpression", "Missing closing ')' in expression.")
			}
			p.unexpected()
		}
		p.i++
		return &ParenExpr{Extent: Extent{start, p.i}, Body: body}
	case c == '{':
		p.i++
		body := p.statementList('}')
		if p.peek() != '}' {
			p.fail(start, start+1, "MissingEndCurlyBrace", "Missing closing '}' in statement block or type definition.")
		}
		text := p.src[start+1 : p.i]
		p.i++
		return &ScriptBlockExpr{Extent: Extent{start, p.i}, Body: body, Text: text}
	case isDigit(c) || c == '.' && isDigit(p.peekAt(1)):
		j := p.i
		for !p.eof() && (isNameChar(p.peek()) || p.peek() == '.' && isDigit(p.peekAt(1)) ||
			(p.peek() == '+' || p.peek() == '-') && (p.src[p.i-1] == 'e' || p.src[p.i-1] == 'E') && !strings.HasPrefix(strings.ToLower(p.src[j:p.i]), "0x")) {
			p.i++
		}
		n, ok := parseNumber(p.src[j:p.i])
		if !ok {
			p.fail(j, p.i, "BadNumericConstant", "The numeric constant %s is not valid.", p.src[j:p.i])
		}
		return &NumberLit{Extent: Extent{start, p.i}, Value: n}
	}
	p.unexpected()
	return nil
}

func (p *parser) hashLiteral() Expr {
	start := p.i
	p.i += 2
	h := &HashLit{}
	for {
		for {
			p.skipSpaceNL()
			if p.peek() == ';' {
				p.i++
				continue
			}
			break
		}
		if p.peek() == '}' {
			p.i++
			break
		}
		if p.eof() {
			p.fail(start, start+2, "IncompleteHashLiteral", "The hash literal was incomplete.")
		}
		var key Expr
		ks := p.i
		switch c := p.peek(); {
		case c == '\'' || c == '"' || c == '$' || c == '(':
			key = p.postfix(p.primary())
		case isDigit(c):
			key = p.primary()
		case isNameChar(c) || c == '-':
			for !p.eof() && (isNameChar(p.peek()) || p.peek() == '-' || p.peek() == '.') {
				p.i++
			}
			key = &StringLit{Extent: Extent{ks, p.i}, Value: p.src[ks:p.i], Bare: true}
		default:
			p.fail(p.i, p.i+1, "MissingKeyInHashLiteral", "Missing key before '=' in hash literal.")
		}
		p.skipSpace()
		if p.peek() != '=' {
			p.fail(p.i, p.i, "MissingEqualsInHashLiteral", "Missing '=' operator after key in hash literal.")
		}
		p.i++
		p.skipSpaceNL()
		if p.peek() == '}' || p.eof() || p.peek() == ';' {
			p.fail(p.i, p.i, "MissingStatementAfterAssignmentInHashLiteral", "Missing statement after '=' in hash literal.")
		}
		val := p.statement()
		h.Entries = append(h.Entries, HashEntry{Key: key, Value: val})
		p.skipSpace()
		switch c := p.peek(); {
		case c == ';' || c == '\n' || c == '}':
		case p.eof():
			p.fail(start, start+2, "IncompleteHashLiteral", "The hash literal was incomplete.")
		default:
			p.unexpected()
		}
	}
	h.Extent = Extent{start, p.i}
	return h
}

func (p *parser) singleQuoted() Expr {
	start := p.i
	p.i++
	var b strings.Builder
	for {
		if p.eof() {
			p.fail(start, len(p.src), "TerminatorExpectedAtEndOfString", "The string is missing the terminator: '.")
		}
		c := p.peek()
		if c == '\'' {
			if p.peekAt(1) == '\'' {
				b.WriteByte('\'')
				p.i += 2
				continue
			}
			p.i++
			break
		}
		b.WriteByte(c)
		p.i++
	}
	return &StringLit{Extent: Extent{start, p.i}, Value: b.String()}
}

func (p *parser) doubleQuoted() Expr {
	start := p.i
	p.i++
	end := -1
	// Find the closing quote first so an unterminated string is reported
	// at its opening quote, as PowerShell does.
	for j := p.i; j < len(p.src); j++ {
		switch p.src[j] {
		case '`':
			j++
		case '"':
			if j+1 < len(p.src) && p.src[j+1] == '"' {
				j++
				continue
			}
			end = j
		case '$':
			if j+1 < len(p.src) && p.src[j+1] == '(' {
				// A subexpression may itself contain quotes: let the
				// parser skip it properly.
				sub := &parser{src: p.src, i: j + 2, depth: p.depth + 1}
				sub.statementList(')')
				if sub.peek() != ')' {
					p.fail(j, sub.i, "MissingEndParenthesisInSubexpression", "Missing closing ')' in subexpression.")
				}
				j = sub.i
			}
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		p.fail(start, len(p.src), "TerminatorExpectedAtEndOfString", "The string is missing the terminator: \".")
	}
	parts := p.expandParts(end)
	p.i = end + 1
	return &ExpandString{Extent: Extent{start, p.i}, Parts: parts}
}

// expandParts parses the body of an expandable string from the cursor to end.
func (p *parser) expandParts(end int) []StrPart {
	var parts []StrPart
	var text strings.Builder
	flush := func() {
		if text.Len() > 0 {
			parts = append(parts, StrPart{Text: text.String()})
			text.Reset()
		}
	}
	for p.i < end {
		c := p.peek()
		switch {
		case c == '`' && p.i+1 < end:
			text.WriteString(backtickEscape(p.src[p.i+1]))
			p.i += 2
		case c == '"' && p.peekAt(1) == '"':
			text.WriteByte('"')
			p.i += 2
		case c == '$' && p.i+1 < end && (p.peekAt(1) == '(' || p.peekAt(1) == '{' || isNameChar(p.peekAt(1)) || p.peekAt(1) == '?' || p.peekAt(1) == '$' || p.peekAt(1) == '^'):
			flush()
			parts = append(parts, StrPart{X: p.variable(true)})
		default:
			text.WriteByte(c)
			p.i++
		}
	}
	flush()
	return parts
}

// variable parses $name, ${name}, $env:NAME, $(...). In strings (inString)
// member access is not part of the variable.
func (p *parser) variable(inString bool) Expr {
	start := p.i
	p.i++ // $
	switch c := p.peek(); {
	case c == '(':
		p.i++
		body := p.statementList(')')
		if p.peek() != ')' {
			p.fail(start, p.i, "MissingEndParenthesisInSubexpression", "Missing closing ')' in subexpression.")
		}
		p.i++
		return &SubExpr{Extent: Extent{start, p.i}, Body: body}
	case c == '{':
		j := strings.IndexByte(p.src[p.i:], '}')
		if j < 0 {
			p.fail(start, len(p.src), "IncompleteDollarVariableReference", "Incomplete variable reference token.")
		}
		name := p.src[p.i+1 : p.i+j]
		p.i += j + 1
		drive := ""
		if k := strings.IndexByte(name, ':'); k > 0 {
			drive, name = strings.ToLower(name[:k]), name[k+1:]
			if drive != "env" {
				drive = ""
			}
		}
		return &VarExpr{Extent: Extent{start, p.i}, Name: name, Drive: drive}
	case c == '?' || c == '$' || c == '^':
		p.i++
		return &VarExpr{Extent: Extent{start, p.i}, Name: string(c)}
	}
	j := p.i
	for !p.eof() && isNameChar(p.peek()) {
		p.i++
	}
	if j == p.i {
		p.fail(start, start+1, "InvalidVariableReference", "Variable reference is not valid. '$' was not followed by a valid variable name character. Consider using ${} to delimit the name.")
	}
	name := p.src[j:p.i]
	drive := ""
	if p.peek() == ':' && p.peekAt(1) != ':' {
		colon := p.i
		p.i++
		k := p.i
		for !p.eof() && isNameChar(p.peek()) {
			p.i++
		}
		if k == p.i {
			p.fail(start, colon+1, "InvalidVariableReferenceWithDrive", "Variable reference is not valid. ':' was not followed by a valid variable name character. Consider using ${} to delimit the name.")
		}
		qual := strings.ToLower(name)
		switch qual {
		case "env":
			drive = "env"
		case "script", "global", "local", "private":
		default:
			p.fail(start, p.i, "EmulatorUnsupportedDrive", "The '%s:' variable drive is not supported by the Hyper-V emulator (see POWERSHELL.md).", name)
		}
		name = p.src[k:p.i]
	}
	return &VarExpr{Extent: Extent{start, p.i}, Name: name, Drive: drive}
}

// ---- compound statements ----

func (p *parser) block(ownerStart int, missingID, missingMsg string) StatementList {
	p.skipSpaceNL()
	if p.peek() != '{' {
		p.fail(p.i, p.i, missingID, "%s", missingMsg)
	}
	open := p.i
	p.i++
	body := p.statementList('}')
	if p.peek() != '}' {
		p.fail(open, open+1, "MissingEndCurlyBrace", "Missing closing '}' in statement block or type definition.")
	}
	p.i++
	return body
}

func (p *parser) condition(kw string) *Pipeline {
	p.skipSpace()
	if p.peek() != '(' {
		p.fail(p.i, p.i, "MissingOpenParenthesisInIfStatement", "Missing '(' after '%s' in if statement.", kw)
	}
	p.i++
	p.skipSpaceNL()
	if p.peek() == ')' {
		p.fail(p.i, p.i, "IfStatementMissingCondition", "Missing condition in if statement after '%s ('.", kw)
	}
	cond := p.pipeline(false)
	p.skipSpaceNL()
	if p.peek() != ')' {
		p.fail(p.i, p.i, "MissingEndParenthesisAfterStatement", "Missing closing ')' after expression in '%s' statement.", kw)
	}
	p.i++
	return cond
}

func (p *parser) ifStmt() Stmt {
	start := p.i
	p.i += 2
	s := &IfStmt{}
	cond := p.condition("if")
	body := p.block(start, "MissingStatementBlock", "Missing statement block after if ( condition ).")
	s.Clauses = append(s.Clauses, IfClause{Cond: cond, Body: body})
	for {
		save := p.i
		p.skipSpaceNL()
		w := strings.ToLower(p.word())
		if w == "elseif" {
			p.i += len(w)
			cond := p.condition("elseif")
			body := p.block(start, "MissingStatementBlock", "Missing statement block after elseif ( condition ).")
			s.Clauses = append(s.Clauses, IfClause{Cond: cond, Body: body})
			continue
		}
		if w == "else" {
			p.i += len(w)
			s.Else = p.block(start, "MissingStatementBlockAfterElse", "Missing statement block after 'else' keyword.")
			s.HasElse = true
		} else {
			p.i = save
		}
		break
	}
	s.Extent = Extent{start, p.i}
	return s
}

func (p *parser) foreachStmt() Stmt {
	start := p.i
	p.i += len("foreach")
	p.skipSpace()
	if p.peek() != '(' {
		p.fail(p.i, p.i, "MissingOpenParenthesisAfterKeyword", "Missing opening '(' after keyword 'foreach'.")
	}
	p.i++
	p.skipSpaceNL()
	if p.peek() != '$' {
		p.fail(p.i, p.i, "MissingVariableNameAfterForeach", "Missing variable name after foreach.")
	}
	v, ok := p.variable(true).(*VarExpr)
	if !ok {
		p.fail(start, p.i, "MissingVariableNameAfterForeach", "Missing variable name after foreach.")
	}
	p.skipSpaceNL()
	if !strings.EqualFold(p.word(), "in") {
		p.fail(p.i, p.i, "MissingInInForeach", "Missing 'in' after variable in foreach loop.")
	}
	p.i += 2
	p.skipSpaceNL()
	if p.peek() == ')' {
		p.fail(p.i, p.i, "MissingForeachExpression", "Missing foreach loop pipeline.")
	}
	in := p.pipeline(false)
	p.skipSpaceNL()
	if p.peek() != ')' {
		p.fail(p.i, p.i, "MissingEndParenthesisAfterForeach", "Missing closing ')' after expression in 'foreach' statement.")
	}
	p.i++
	body := p.block(start, "MissingForeachStatement", "Missing statement body in foreach loop.")
	return &ForeachStmt{Extent: Extent{start, p.i}, Var: v.Name, In: in, Body: body}
}

func (p *parser) tryStmt() Stmt {
	start := p.i
	p.i += 3
	s := &TryStmt{}
	s.Body = p.block(start, "MissingTryStatementBlock", "Missing statement block after 'try'.")
	for {
		save := p.i
		p.skipSpaceNL()
		w := strings.ToLower(p.word())
		if w == "catch" {
			p.i += len(w)
			var cc CatchClause
			for {
				p.skipSpace()
				if p.peek() != '[' {
					break
				}
				t, _ := p.typeLiteral()
				cc.Types = append(cc.Types, t)
				p.skipSpace()
				if p.peek() == ',' {
					p.i++
					p.skipSpaceNL()
					continue
				}
				break
			}
			cc.Body = p.block(start, "MissingCatchHandlerBlock", "Missing statement block in catch block.")
			s.Catches = append(s.Catches, cc)
			continue
		}
		if w == "finally" {
			p.i += len(w)
			s.Finally = p.block(start, "MissingFinallyStatementBlock", "Missing statement block after 'finally'.")
			s.HasFinally = true
		} else {
			p.i = save
		}
		break
	}
	if len(s.Catches) == 0 && !s.HasFinally {
		p.fail(start, p.i, "MissingCatchOrFinally", "The Try statement is missing its Catch or Finally block.")
	}
	s.Extent = Extent{start, p.i}
	return s
}
