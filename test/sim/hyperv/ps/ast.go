package ps

// The AST of the PowerShell subset. Every node records the byte offsets of
// its source extent so runtime errors can print PowerShell's "At line:1
// char:N" position block with the right underline.

// Extent is a half-open byte range of the script.
type Extent struct{ Start, End int }

func (e Extent) extent() Extent { return e }

// Node is any AST node.
type Node interface{ extent() Extent }

// StatementList is a sequence of statements.
type StatementList []Stmt

// Stmt is a statement.
type Stmt interface {
	Node
	stmt()
}

// Expr is an expression.
type Expr interface {
	Node
	expr()
}

// Pipeline is one or more elements joined by |. The first element may be
// an expression; the others are commands.
type Pipeline struct {
	Extent
	Elems []PipeElem
}

// PipeElem is a command or (first only) an expression.
type PipeElem interface{ Node }

// ExprElem is an expression used as the first pipeline element.
type ExprElem struct {
	Extent
	X Expr
}

// Command is a cmdlet invocation with its parameters and arguments.
type Command struct {
	Extent
	Name     string
	NameExt  Extent
	Elements []CommandElement
}

// CommandElement is either a parameter (-Name, -Name:value) or an argument.
type CommandElement struct {
	Extent
	Param    string // without the dash; "" for an argument
	ColonArg Expr   // -Name:value
	HasColon bool
	Arg      Expr // an argument
}

// AssignStmt is target op value.
type AssignStmt struct {
	Extent
	Target Expr
	Op     string // =, +=, -=, *=, /=
	Value  Stmt
}

// IfClause is one if/elseif arm.
type IfClause struct {
	Cond *Pipeline
	Body StatementList
}

// IfStmt is if/elseif/else.
type IfStmt struct {
	Extent
	Clauses []IfClause
	Else    StatementList
	HasElse bool
}

// ForeachStmt is foreach ($v in pipeline) { }.
type ForeachStmt struct {
	Extent
	Var  string
	In   *Pipeline
	Body StatementList
}

// CatchClause is catch [T1],[T2] { }.
type CatchClause struct {
	Types []string
	Body  StatementList
}

// TryStmt is try/catch/finally.
type TryStmt struct {
	Extent
	Body       StatementList
	Catches    []CatchClause
	Finally    StatementList
	HasFinally bool
}

// FlowStmt is throw, exit, return, break or continue.
type FlowStmt struct {
	Extent
	Keyword string
	Value   *Pipeline // may be nil
}

func (*Pipeline) stmt()    {}
func (*AssignStmt) stmt()  {}
func (*IfStmt) stmt()      {}
func (*ForeachStmt) stmt() {}
func (*TryStmt) stmt()     {}
func (*FlowStmt) stmt()    {}

// StringLit is a literal string ('...' or a bareword argument).
type StringLit struct {
	Extent
	Value string
	Bare  bool // a bareword; numbers-looking barewords are NumberLit instead
}

// StrPart is a piece of an expandable string: literal text or an expression.
type StrPart struct {
	Text string
	X    Expr
}

// ExpandString is a "..." string with $var and $( ) parts.
type ExpandString struct {
	Extent
	Parts []StrPart
}

// NumberLit is a numeric literal.
type NumberLit struct {
	Extent
	Value Value
}

// VarExpr is $name, ${name}, $env:NAME.
type VarExpr struct {
	Extent
	Name  string // without scope/drive, as written
	Drive string // "env" or "" ; scopes (script:, global:, local:) are dropped
}

// SubExpr is $( ).
type SubExpr struct {
	Extent
	Body StatementList
}

// ArraySubExpr is @( ).
type ArraySubExpr struct {
	Extent
	Body StatementList
}

// ParenExpr is ( pipeline ).
type ParenExpr struct {
	Extent
	Body Stmt
}

// HashEntry is key = value in a hash literal.
type HashEntry struct {
	Key   Expr
	Value Stmt
}

// HashLit is @{ }.
type HashLit struct {
	Extent
	Entries []HashEntry
}

// ScriptBlockExpr is { }.
type ScriptBlockExpr struct {
	Extent
	Body StatementList
	Text string
}

// ArrayLit is a, b, c.
type ArrayLit struct {
	Extent
	Elems []Expr
}

// BinaryExpr is l op r; Op is lower case ("-eq", "+", "..", "-f").
type BinaryExpr struct {
	Extent
	Op     string
	OpExt  Extent
	L, R   Expr
	CaseOp bool // -ceq etc.
}

// UnaryExpr is op x; Op is "-not", "!", "-", "+", "-join", "-split", "-bnot".
type UnaryExpr struct {
	Extent
	Op string
	X  Expr
}

// CastExpr is [type]x.
type CastExpr struct {
	Extent
	Type string
	X    Expr
}

// TypeExpr is [type] used as a value.
type TypeExpr struct {
	Extent
	Type string
}

// MemberExpr is x.Name or [type]::Name.
type MemberExpr struct {
	Extent
	X      Expr
	Name   string
	Static bool
}

// InvokeExpr is x.Name(args) or [type]::Name(args).
type InvokeExpr struct {
	Extent
	X      Expr
	Name   string
	Args   []Expr
	Static bool
}

// IndexExpr is x[i].
type IndexExpr struct {
	Extent
	X     Expr
	Index Expr
}

func (*StringLit) expr()       {}
func (*ExpandString) expr()    {}
func (*NumberLit) expr()       {}
func (*VarExpr) expr()         {}
func (*SubExpr) expr()         {}
func (*ArraySubExpr) expr()    {}
func (*ParenExpr) expr()       {}
func (*HashLit) expr()         {}
func (*ScriptBlockExpr) expr() {}
func (*ArrayLit) expr()        {}
func (*BinaryExpr) expr()      {}
func (*UnaryExpr) expr()       {}
func (*CastExpr) expr()        {}
func (*TypeExpr) expr()        {}
func (*MemberExpr) expr()      {}
func (*InvokeExpr) expr()      {}
func (*IndexExpr) expr()       {}
