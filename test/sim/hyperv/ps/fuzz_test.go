package ps

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks the parser never panics and always reports a ParseError
// with an extent inside the script when it rejects one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`$ErrorActionPreference='Stop'; try { Get-VM -Name 'a''b' | Select-Object Name, @{n='State';e={[string]$_.State}} | ConvertTo-Json -Compress } catch { exit 1 }`,
		"$x = @(1,2",
		`"$user:$password"`,
		"@{a=1\nb=@{c=$(1+2)}}",
		`if ($a -eq 1) { 'x' } elseif (!$b) { 1..3 | % { $_ } } else { throw "y$z" }`,
		"foreach ($i in @()) { break }",
		"[pscustomobject]@{a=[int]'1'}.a.ToString()",
		"`\n<# c #> # d",
		"$a[0][1].b.c(1, 'x')",
		"-not -1 -band 0x10 -f 'x'",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		_, err := Parse(src)
		if err == nil {
			return
		}
		var pe *ParseError
		if !errors.As(err, &pe) {
			t.Fatalf("Parse returned %T, want *ParseError", err)
		}
		if pe.Start < 0 || pe.Start > len(src) || pe.Message == "" || pe.ID == "" {
			t.Fatalf("bad parse error %+v for %q", pe, src)
		}
	})
}

// FuzzRun runs arbitrary scripts with the built-in cmdlets: no panic, a
// bounded run, and an exit code PowerShell could produce.
func FuzzRun(f *testing.F) {
	for _, s := range []string{
		`1..3 | ForEach-Object { $_ * 2 } | ConvertTo-Json -Compress`,
		`try { Write-Error 'x' -ErrorAction Stop } catch { $_.Exception.Message }`,
		`$h = @{}; $h.a = 1; $h + @{b=2}`,
		`'{0}' -f $null, 1`,
		`[int]::MaxValue * 2; 9223372036854775807 + 1`,
		`'a' * 3; @(1) * 2`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r := Run(ctx, src, Options{CLIXML: true})
		// The error stream is always one well-formed CLIXML document, and
		// a failure without an explicit exit code is exit code 1.
		if r.Stderr != "" && (!strings.HasPrefix(r.Stderr, "#< CLIXML\r\n<Objs ") || !strings.HasSuffix(r.Stderr, "</Objs>")) {
			t.Fatalf("malformed error stream %q", r.Stderr)
		}
		if !strings.Contains(strings.ToLower(src), "exit") && r.ExitCode != 0 && r.ExitCode != 1 {
			t.Fatalf("exit code %d without an exit statement", r.ExitCode)
		}
	})
}
