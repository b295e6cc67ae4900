package ps

import (
	"context"
	"strings"
	"testing"
	"time"
)

func run(script string) Result {
	return Run(context.Background(), script, Options{})
}

func TestSubset(t *testing.T) {
	tests := []struct {
		name, script, want string
	}{
		{"literal strings", `'it''s'; "a""b"`, "it's\r\na\"b\r\n"},
		{"expansion", `$n = 'vm1'; $a = @(1,2); "name=$n sub=$($a[1] + 1) all=$a"`, "name=vm1 sub=3 all=1 2\r\n"},
		{"backtick escapes", "\"a`tb`$c\"", "a\tb$c\r\n"},
		{"braced variable", `${my var} = 5; ${my var}`, "5\r\n"},
		{"numbers", `1 + 2 * 3; 7 / 2; 6 / 3; 0x10; 1kb; 10 % 3`, "7\r\n3.5\r\n2\r\n16\r\n1024\r\n1\r\n"},
		{"booleans and null", `$true; $false; $null; $null -eq $x`, "True\r\nFalse\r\nTrue\r\n"},
		{"arrays", `$a = @(3, 'x', $true); $a.Count; $a[-1]; @().Count; @($null).Count; ,1 | ForEach-Object { $_ }`, "3\r\nTrue\r\n0\r\n1\r\n1\r\n"},
		{"array add", `$a = @(); $a += 'x'; $a += 'y'; $a -join '+'`, "x+y\r\n"},
		{"hashtable", `$h = @{ a = 1; 'b c' = 'two' }; $h.a; $h['b c']; $h.Count; $h.ContainsKey('A')`, "1\r\ntwo\r\n2\r\nTrue\r\n"},
		{"hashtable multiline", "$h = @{\n  a = 1\n  b = 2\n}\n$h.b", "2\r\n"},
		{"pscustomobject", `[pscustomobject]@{ b = 2; a = 1 } | ConvertTo-Json -Compress`, `{"b":2,"a":1}` + "\r\n"},
		{"string cast", `[string]42; [string]@(1,2); ([string]$null).Length`, "42\r\n1 2\r\n0\r\n"},
		{"int cast", `[int]'12' + 1; [int]2.5; [int]3.5`, "13\r\n2\r\n4\r\n"},
		{"member access and ToString", `$o = [pscustomobject]@{ n = 5 }; $o.n.ToString(); $o.missing -eq $null`, "5\r\nTrue\r\n"},
		{"member enumeration", `@([pscustomobject]@{n=1}, [pscustomobject]@{n=2}).n`, "1\r\n2\r\n"},
		{"comparisons", `1 -eq '1'; 'A' -eq 'a'; 'A' -ceq 'a'; 5 -gt 3; 'b' -lt 'a'; 1 -ne 2`, "True\r\nTrue\r\nFalse\r\nTrue\r\nFalse\r\nTrue\r\n"},
		{"array filter", `@(1,2,3,2) -eq 2`, "2\r\n2\r\n"},
		{"like and match", `'node1.lab.local' -like 'NODE1*'; 'abc' -match 'b(c)'; $Matches[1]; 'x' -notlike 'y*'`, "True\r\nTrue\r\nc\r\nTrue\r\n"},
		{"contains and in", `@('a','b') -contains 'B'; 'c' -in @('a','b'); 'a' -notin 'b','c'`, "True\r\nFalse\r\nTrue\r\n"},
		{"logical", `$true -and $false; $true -or $false; -not $true; !$false; $true -xor $true`, "False\r\nTrue\r\nFalse\r\nTrue\r\nFalse\r\n"},
		{"short circuit", `$false -and $x.Foo(); 'ok'`, "False\r\nok\r\n"},
		{"join and split", `@('a','b') -join ','; -join @('x','y'); ('a,b' -split ',').Count`, "a,b\r\nxy\r\n2\r\n"},
		{"replace", `'node1.lab.local' -replace '\..*$', ''`, "node1\r\n"},
		{"format", `'{0}-{1:N1}' -f 'a', 2.25`, "a-2.3\r\n"},
		{"range", `(1..4) -join ''`, "1234\r\n"},
		{"Out-Null and null assignment", `Write-Output 1 | Out-Null; $null = Write-Output 2; [void](3)`, ""},
		{"if elseif else", `$x = 2; if ($x -eq 1) { 'one' } elseif ($x -eq 2) { 'two' } else { 'other' }`, "two\r\n"},
		{"if as value", `$v = if ($false) { 'a' } else { 'b' }; $v`, "b\r\n"},
		{"foreach with break", `foreach ($i in 1..5) { if ($i -eq 4) { break }; if ($i -eq 2) { continue }; $i }`, "1\r\n3\r\n"},
		{"foreach over null", `foreach ($i in $null) { 'never' }; 'done'`, "done\r\n"},
		{"try catch finally", `try { throw 'boom' } catch { "caught $_" } finally { 'finally' }`, "caught boom\r\nfinally\r\n"},
		{"catch typed", `try { Foo-Bar } catch [System.Management.Automation.CommandNotFoundException] { 'cnf' } catch { 'other' }`, "cnf\r\n"},
		{"catch falls through types", `try { throw 'x' } catch [System.Management.Automation.CommandNotFoundException] { 'cnf' } catch { 'other' }`, "other\r\n"},
		{"catch error details", `try { Write-Output -Nope } catch { $_.FullyQualifiedErrorId; $_.Exception.GetType().FullName; [string]$_.CategoryInfo.Category }`,
			"NamedParameterNotFound,Microsoft.PowerShell.Commands.WriteOutputCommand\r\nSystem.Management.Automation.ParameterBindingException\r\nInvalidArgument\r\n"},
		{"error action stop in try", `$ErrorActionPreference = 'Stop'; try { Write-Error 'bad' } catch { "got: $($_.Exception.Message)" }`, "got: bad\r\n"},
		{"error action parameter", `try { Write-Error 'e1' -ErrorAction Stop } catch { 'caught' }`, "caught\r\n"},
		{"silently continue", `Write-Error 'quiet' -ErrorAction SilentlyContinue; $Error.Count; $?`, "1\r\nTrue\r\n"},
		{"pipelines", `1..5 | Where-Object { $_ % 2 } | ForEach-Object { $_ * 10 }`, "10\r\n30\r\n50\r\n"},
		{"foreach begin end", `1..3 | ForEach-Object -Begin { $s = 0 } -Process { $s += $_ } -End { $s }`, "6\r\n"},
		{"foreach member name", `@([pscustomobject]@{n='a'}) | ForEach-Object n`, "a\r\n"},
		{"select properties", `[pscustomobject]@{a=1;b=2;c=3} | Select-Object c, a | ConvertTo-Json -Compress`, `{"c":3,"a":1}` + "\r\n"},
		{"select calculated", `@(1,2) | Select-Object @{Name='v'; Expression={ $_ * 2 }}, @{l='s';e={'x'}} | ConvertTo-Json -Compress`, `[{"v":2,"s":"x"},{"v":4,"s":"x"}]` + "\r\n"},
		{"select first expand", `@([pscustomobject]@{n=1}, [pscustomobject]@{n=2}) | Select-Object -First 1 -ExpandProperty n`, "1\r\n"},
		{"select wildcard", `[pscustomobject]@{ab=1;ac=2;b=3} | Select-Object a* | ConvertTo-Json -Compress`, `{"ab":1,"ac":2}` + "\r\n"},
		{"json escaping 5.1", "@{s = \"a'b<c>&d\" + \"`n\"} | ConvertTo-Json -Compress", `{"s":"a\u0027b\u003cc\u003e\u0026d\n"}` + "\r\n"},
		{"json depth", `@{a=@{b=@{c=@{d=1}}}} | ConvertTo-Json -Compress`, `{"a":{"b":{"c":"System.Collections.Hashtable"}}}` + "\r\n"},
		{"json depth 5", `@{a=@{b=@{c=@{d=1}}}} | ConvertTo-Json -Compress -Depth 5`, `{"a":{"b":{"c":{"d":1}}}}` + "\r\n"},
		{"json empty and null", `@() | ConvertTo-Json; ConvertTo-Json -InputObject $null -Compress; ConvertTo-Json -InputObject @() -Compress`, "null\r\n[]\r\n"},
		{"json pretty", `[pscustomobject]@{a=1;b=@(2)} | ConvertTo-Json`, "{\r\n    \"a\":  1,\r\n    \"b\":  [\r\n              2\r\n          ]\r\n}\r\n"},
		{"env drive", `$env:COMPUTERNAME`, "HOST1\r\n"},
		{"write-output many", `Write-Output a b; echo c`, "a\r\nb\r\nc\r\n"},
		{"comments", "# a comment\n1 <# block #> + 1 # trailing", "2\r\n"},
		{"line continuation", "Write-Output `\n 'x'", "x\r\n"},
		{"semicolons and newlines", "1;;2\n\n3", "1\r\n2\r\n3\r\n"},
		{"type test", `5 -is [int]; 'x' -is [string]; @() -is [array]; $null -is [object]`, "True\r\nTrue\r\nTrue\r\nFalse\r\n"},
		{"static members", `[string]::IsNullOrEmpty(''); [string]::Join('-', @('a','b'))`, "True\r\na-b\r\n"},
		{"string methods", `'  Ab '.Trim().ToLower(); 'node1.lab'.Split('.')[0]; 'abc'.Substring(1); 'abc'.StartsWith('a')`, "ab\r\nnode1\r\nbc\r\nTrue\r\n"},
		{"ordered", `$h = [ordered]@{z=1; a=2}; $h.Keys -join ','`, "z,a\r\n"},
		{"aliases", `@(1,2) | where { $_ -gt 1 } | % { $_ } | select -First 1`, "2\r\n"},
		{"datetime o", `([datetime]'2026-01-02T03:04:05Z').ToString('o')`, "2026-01-02T03:04:05.0000000Z\r\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Run(context.Background(), tc.script, Options{Env: map[string]string{"ComputerName": "HOST1"}})
			if r.Stderr != "" || r.ExitCode != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.ExitCode, r.Stderr)
			}
			if r.Stdout != tc.want {
				t.Fatalf("stdout %q\nwant   %q", r.Stdout, tc.want)
			}
		})
	}
}

// TestRejects covers what is outside the subset or invalid: each must fail
// with PowerShell's message and FullyQualifiedErrorId, never run silently.
func TestRejects(t *testing.T) {
	tests := []struct {
		name, script, message, fqid string
	}{
		{"unknown cmdlet", `Get-Date`, "Get-Date : The term 'Get-Date' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.", "CommandNotFoundException"},
		{"unknown cmdlet in pipeline", `1 | Format-Table`, "The term 'Format-Table' is not recognized", "CommandNotFoundException"},
		{"while loop", `while ($true) {}`, "The 'while' keyword is not supported by the Hyper-V emulator", "EmulatorUnsupportedKeyword"},
		{"function", `function f { 1 }`, "The 'function' keyword is not supported", "EmulatorUnsupportedKeyword"},
		{"redirection", `Write-Output 1 > $null`, "Redirection operators are not supported", "EmulatorUnsupportedRedirection"},
		{"stderr redirection", `Get-VM 2>&1`, "Redirection operators are not supported", "EmulatorUnsupportedRedirection"},
		{"input redirection", `Write-Output 1 < x`, "The '<' operator is reserved for future use.", "RedirectionNotSupported"},
		{"here-string", "@'\nx\n'@", "Here-strings are not supported", "EmulatorUnsupportedHereString"},
		{"call operator", `& 'x'`, "The '&' invocation operator is not supported", "EmulatorUnsupportedOperator"},
		{"increment", `$i++`, "Unexpected token '+'", "UnexpectedToken"},
		{"pre-increment", `++$i`, "The '++' operator is not supported", "EmulatorUnsupportedOperator"},
		{"drive-qualified variable", `$user:$password`, "Variable reference is not valid. ':' was not followed by a valid variable name character. Consider using ${} to delimit the name.", "InvalidVariableReferenceWithDrive"},
		{"drive in string", `"$user:$pass"`, "':' was not followed by a valid variable name character", "InvalidVariableReferenceWithDrive"},
		{"unknown drive", `$foo:bar`, "The 'foo:' variable drive is not supported", "EmulatorUnsupportedDrive"},
		{"missing paren", `$x = @(1,2`, "Missing closing ')' in subexpression.", "MissingEndParenthesisInSubexpression"},
		{"missing brace", `if ($true) { 1`, "Missing closing '}' in statement block or type definition.", "MissingEndCurlyBrace"},
		{"unterminated string", `'abc`, "The string is missing the terminator: '.", "TerminatorExpectedAtEndOfString"},
		{"unterminated double", `"abc`, "The string is missing the terminator: \".", "TerminatorExpectedAtEndOfString"},
		{"missing hash equals", `@{a 1}`, "Missing '=' operator after key in hash literal.", "MissingEqualsInHashLiteral"},
		{"operator without operand", `1 -eq`, "You must provide a value expression following the '-eq' operator.", "ExpectedValueExpression"},
		{"try without catch", `try { 1 }`, "The Try statement is missing its Catch or Finally block.", "MissingCatchOrFinally"},
		{"empty pipe", `Write-Output 1 |`, "An empty pipe element is not allowed.", "EmptyPipeElement"},
		{"expression after pipe", `1 | $x`, "Expressions are only allowed as the first element of a pipeline.", "ExpressionsMustBeFirstInPipeline"},
		{"bad assignment", `1 = 2`, "The assignment expression is not valid.", "InvalidLeftHandSide"},
		{"unknown parameter", `Write-Output -Bogus 1`, "A parameter cannot be found that matches parameter name 'Bogus'.", "NamedParameterNotFound,Microsoft.PowerShell.Commands.WriteOutputCommand"},
		{"ambiguous parameter", `ConvertTo-Json -D 3 -C -I 1`, "Parameter cannot be processed because the parameter name 'D' is ambiguous. Possible matches include: -Depth -Debug.", "AmbiguousParameter,"},
		{"missing argument", `ConvertTo-Json -Depth`, "Missing an argument for parameter 'Depth'. Specify a parameter of type 'System.Int32' and try again.", "MissingArgument,"},
		{"bad int argument", `ConvertTo-Json -Depth x -InputObject 1`, "Cannot bind parameter 'Depth'. Cannot convert value \"x\" to type \"System.Int32\".", "CannotConvertArgumentNoMessage,"},
		{"depth out of range", `ConvertTo-Json -Depth 101 -InputObject 1`, "The 101 argument is greater than the maximum allowed range of 100.", "ParameterArgumentValidationError,"},
		{"missing mandatory", `Where-Object`, "Cannot process command because of one or more missing mandatory parameters: FilterScript.", "MissingMandatoryParameter,"},
		{"method on null", `$x.Foo()`, "You cannot call a method on a null-valued expression.", "InvokeMethodOnNull"},
		{"unknown method", `'a'.Frobnicate()`, "Method invocation failed because [System.String] does not contain a method named 'Frobnicate'.", "MethodNotFound"},
		{"unknown type", `[Frob]$x`, "Unable to find type [Frob].", "TypeNotFound"},
		{"bad cast", `[int]'abc'`, "Cannot convert value \"abc\" to type \"System.Int32\".", "InvalidCastFromStringToInteger"},
		{"index null", `$x[0]`, "Cannot index into a null array.", "NullArray"},
		{"divide by zero", `1/0`, "Attempted to divide by zero.", "RuntimeException"},
		{"throw", `throw 'custom failure'`, "custom failure", "custom failure"},
		{"read-only variable", `$true = 1`, "Cannot overwrite variable true because it is read-only or constant.", "VariableNotWritable"},
		{"bad calculated property", `1 | Select-Object @{n='a'; x={1}}`, "The x key is not valid.", "IllegalKeyFound,"},
		{"enum comparison typo", `[System.Management.Automation.ActionPreference]'Stop' -eq 'Stpo'`, `Cannot convert value "Stpo" to type "System.Management.Automation.ActionPreference".`, "RuntimeException"},
		{"enum cast typo", `[System.Management.Automation.ActionPreference]'Stpo'`, `Cannot convert value "Stpo" to type "System.Management.Automation.ActionPreference".`, "InvalidCastFromStringToInteger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.script)
			if r.ExitCode != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr:\n%s", r.ExitCode, r.Stdout, r.Stderr)
			}
			if !strings.Contains(r.Stderr, tc.message) {
				t.Fatalf("stderr lacks %q:\n%s", tc.message, r.Stderr)
			}
			if !strings.Contains(r.Stderr, "FullyQualifiedErrorId : "+tc.fqid) {
				t.Fatalf("stderr lacks FullyQualifiedErrorId %q:\n%s", tc.fqid, r.Stderr)
			}
		})
	}
}

func TestErrorRendering(t *testing.T) {
	r := run("Write-Output 'ok'\n$x = @(1,2")
	want := "At line:2 char:6\r\n+ $x = @(1,2\r\n+      ~~~~~\r\nMissing closing ')' in subexpression.\r\n" +
		"    + CategoryInfo          : ParserError: (:) [], ParentContainsErrorRecordException\r\n" +
		"    + FullyQualifiedErrorId : MissingEndParenthesisInSubexpression\r\n \r\n"
	if r.Stdout != "" {
		t.Errorf("a script with a parse error ran: stdout %q", r.Stdout)
	}
	if r.Stderr != want {
		t.Errorf("parse error rendering:\n%q\nwant\n%q", r.Stderr, want)
	}

	r = run(`Foo-Bar`)
	want = "Foo-Bar : The term 'Foo-Bar' is not recognized as the name of a cmdlet, function, script file, or operable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again.\r\n" +
		"At line:1 char:1\r\n+ Foo-Bar\r\n+ ~~~~~~~\r\n" +
		"    + CategoryInfo          : ObjectNotFound: (Foo-Bar:String) [], CommandNotFoundException\r\n" +
		"    + FullyQualifiedErrorId : CommandNotFoundException\r\n \r\n"
	if r.Stderr != want {
		t.Errorf("command not found rendering:\n%q\nwant\n%q", r.Stderr, want)
	}
}

func TestCLIXML(t *testing.T) {
	r := Run(context.Background(), `Write-Error 'bad_x <thing>'`, Options{CLIXML: true})
	if !strings.HasPrefix(r.Stderr, "#< CLIXML\r\n<Objs Version=\"1.1.0.1\" xmlns=\"http://schemas.microsoft.com/powershell/2004/04\"><S S=\"Error\">") {
		t.Fatalf("not a CLIXML error stream: %q", r.Stderr)
	}
	if !strings.Contains(r.Stderr, "bad_x005F_x &lt;thing&gt;_x000D__x000A_</S>") {
		t.Fatalf("CLIXML escaping wrong: %q", r.Stderr)
	}
	if !strings.HasSuffix(r.Stderr, "</Objs>") {
		t.Fatalf("CLIXML not closed: %q", r.Stderr)
	}
	r = Run(context.Background(), `'fine'`, Options{CLIXML: true, Progress: true})
	if r.ExitCode != 0 || r.Stdout != "fine\r\n" || !strings.Contains(r.Stderr, `<Obj S="progress"`) {
		t.Fatalf("progress record: exit %d stdout %q stderr %q", r.ExitCode, r.Stdout, r.Stderr)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		script string
		want   int
	}{
		{`'x'`, 0},
		{`exit 7`, 7},
		{`exit`, 0},
		{`exit -1`, -1},
		{`Write-Error 'x'`, 1},
		{`Write-Error 'x'; 'recovered'`, 0},
		{`'before'; Foo-Bar; 'after'`, 0},
		{`'before'; Foo-Bar`, 1},
		{`$ErrorActionPreference = 'Stop'; Foo-Bar; 'after'`, 1},
		{`throw 'x'; 'never'`, 1},
		{`try { exit 4 } finally { 'cleanup' }`, 4},
		{`try { throw 'x' } catch { exit 9 }`, 9},
	}
	for _, tc := range tests {
		r := run(tc.script)
		if r.ExitCode != tc.want {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.script, r.ExitCode, tc.want, r.Stderr)
		}
	}
	if r := run(`throw 'x'; 'never'`); strings.Contains(r.Stdout, "never") {
		t.Error("statements after an uncaught throw ran")
	}
	if r := run(`$ErrorActionPreference = 'Stop'; Foo-Bar; 'after'`); strings.Contains(r.Stdout, "after") {
		t.Error("statements after a Stop error ran")
	}
	if r := run(`'before'; Foo-Bar; 'after'`); r.Stdout != "before\r\nafter\r\n" {
		t.Errorf("statement-terminating error must not stop the script: %q", r.Stdout)
	}
}

func TestCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := Run(ctx, `foreach ($i in 1..100000) { $i }`, Options{})
	if r.ExitCode == 0 || !strings.Contains(r.Stderr, "The pipeline has been stopped.") {
		t.Fatalf("cancelled run: exit %d stderr %q", r.ExitCode, r.Stderr)
	}
}

func TestBudget(t *testing.T) {
	r := run(`foreach ($i in 1..1000000) { foreach ($j in 1..1000000) { } }`)
	if r.ExitCode != 1 || !strings.Contains(r.Stderr, "execution budget") {
		t.Fatalf("budget not enforced: exit %d stderr %q", r.ExitCode, r.Stderr)
	}
}

func TestCommandTable(t *testing.T) {
	tbl := NewCommandTable()
	tbl.Add(&Cmdlet{
		Name:  "Get-Thing",
		Class: "Test.GetThing",
		Params: []Param{
			{Name: "Name", Type: TStringArray, Position: 0, Sets: []string{"ByName"}},
			{Name: "InputObject", Type: TObject, ObjectTypes: []string{"Test.Thing"}, Position: -1, FromPipeline: true, Sets: []string{"ByObject"}},
		},
		Sets: []string{"ByName", "ByObject"},
		Process: func(c *Call) error {
			if c.HasItem {
				o := c.Item.(*Object)
				v, _ := o.Get("N")
				c.Write("piped " + ToString(v))
				return nil
			}
			for _, n := range c.Strings("Name") {
				o := NewObject("Test.Thing")
				o.Set("N", n)
				c.Write(o)
			}
			return nil
		},
	})
	r := Run(context.Background(), `Get-Thing a, b | Get-Thing; 'x' | Get-Thing`, Options{Commands: tbl, Now: func() time.Time { return time.Time{} }})
	if r.Stdout != "piped a\r\npiped b\r\n" {
		t.Errorf("stdout %q", r.Stdout)
	}
	if !strings.Contains(r.Stderr, "The input object cannot be bound to any parameters") {
		t.Errorf("a string piped to a command taking objects must be refused:\n%s", r.Stderr)
	}
}
