package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseServiceArgs(t *testing.T) {
	const cfg = `C:\ProgramData\hvro\hvro.yaml`
	tests := []struct {
		name    string
		args    []string
		want    serviceArgs
		wantErr string // substring; "" means success
	}{
		{"install defaults", []string{"install", "--config", cfg},
			serviceArgs{action: "install", name: "hvro", config: cfg}, ""},
		{"install with name and log", []string{"install", "--config", cfg, "--name", "hvro-lab", "--log-file", `D:\logs\hvro.log`},
			serviceArgs{action: "install", name: "hvro-lab", config: cfg, logFile: `D:\logs\hvro.log`}, ""},
		{"install single dash and =", []string{"install", "-config=" + cfg, "-name=x"},
			serviceArgs{action: "install", name: "x", config: cfg}, ""},
		{"run", []string{"run", "--name", "hvro", "--config", cfg},
			serviceArgs{action: "run", name: "hvro", config: cfg}, ""},
		{"uninstall defaults", []string{"uninstall"},
			serviceArgs{action: "uninstall", name: "hvro"}, ""},
		{"uninstall named", []string{"uninstall", "--name", "hvro2"},
			serviceArgs{action: "uninstall", name: "hvro2"}, ""},

		{"no action", nil, serviceArgs{}, "an action is required"},
		{"unknown action", []string{"start"}, serviceArgs{}, `unknown action "start"`},
		{"flag before action", []string{"--config", cfg, "install"}, serviceArgs{}, `unknown action "--config"`},
		{"install without config", []string{"install"}, serviceArgs{}, "install: --config is required"},
		{"install blank config", []string{"install", "--config", " "}, serviceArgs{}, "install: --config is required"},
		{"run without config", []string{"run", "--name", "hvro"}, serviceArgs{}, "run: --config is required"},
		{"uninstall takes no config", []string{"uninstall", "--config", cfg}, serviceArgs{}, "flag provided but not defined: -config"},
		{"unknown flag", []string{"install", "--config", cfg, "--wait", "5m"}, serviceArgs{}, "flag provided but not defined: -wait"},
		{"stray argument", []string{"install", "--config", cfg, "extra"}, serviceArgs{}, `unexpected argument "extra"`},
		{"empty name", []string{"install", "--config", cfg, "--name", ""}, serviceArgs{}, "must not be empty"},
		{"backslash in name", []string{"uninstall", "--name", `a\b`}, serviceArgs{}, "must not contain a slash"},
		{"space in name", []string{"uninstall", "--name", "hvro lab"}, serviceArgs{}, "must not contain a slash, backslash, space"},
		{"control character", []string{"uninstall", "--name", "a\tb"}, serviceArgs{}, "control characters"},
		{"name too long", []string{"uninstall", "--name", strings.Repeat("h", 257)}, serviceArgs{}, "longer than 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseServiceArgs(tc.args)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("parseServiceArgs(%q): %v", tc.args, err)
				}
				if got != tc.want {
					t.Fatalf("parseServiceArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("parseServiceArgs(%q) error = %v, want one containing %q", tc.args, err, tc.wantErr)
			}
		})
	}
}

func TestServiceCmdUsage(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		notWindows bool // the outcome differs on Windows
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: "usage: hvro service ACTION"},
		{name: "no action", args: nil, code: 2, stderr: "hvro service: an action is required"},
		{name: "bad flag", args: []string{"install"}, code: 2, stderr: "install: --config is required\nusage: hvro service"},
		{name: "valid on Linux", args: []string{"install", "--config", "/etc/hvro/hvro.yaml"}, code: 2,
			stderr: "hvro service install: hvro service is for Windows; on Linux use deploy/systemd", notWindows: true},
		{name: "run on Linux", args: []string{"run", "--config", "/etc/hvro/hvro.yaml"}, code: 2,
			stderr: "on Linux use deploy/systemd", notWindows: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.notWindows && runtime.GOOS == "windows" {
				t.Skip("Windows runs the service")
			}
			var out, errb bytes.Buffer
			code := realMain(append([]string{"service"}, tc.args...), func(string) string { return "" }, &out, &errb)
			if code != tc.code {
				t.Errorf("exit code %d, want %d (stderr %q)", code, tc.code, errb.String())
			}
			// An empty want means nothing may be written there.
			for _, s := range []struct{ name, got, want string }{{"stdout", out.String(), tc.stdout}, {"stderr", errb.String(), tc.stderr}} {
				if s.want == "" && s.got != "" {
					t.Errorf("%s %q, want it empty", s.name, s.got)
				} else if !strings.Contains(s.got, s.want) {
					t.Errorf("%s %q does not contain %q", s.name, s.got, s.want)
				}
			}
		})
	}
}

func TestServiceHelpIsErrHelp(t *testing.T) {
	for _, a := range []string{"-h", "--help", "help"} {
		if _, err := parseServiceArgs([]string{a}); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("parseServiceArgs(%q) = %v, want flag.ErrHelp", a, err)
		}
	}
}

func TestLogFileRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "logs", "hvro.log") // the folder is created
	lf, err := openLogFile(path, 100, 2)
	if err != nil {
		t.Fatal(err)
	}
	line := func(i int) []byte { return fmt.Appendf(nil, "%-39d\n", i) } // 40 bytes
	for i := 1; i <= 7; i++ {
		if n, err := lf.Write(line(i)); err != nil || n != 40 {
			t.Fatalf("write %d: n=%d err=%v", i, n, err)
		}
	}
	if err := lf.Close(); err != nil {
		t.Fatal(err)
	}
	// Two lines fit in 100 bytes: 7 lines make hvro.log = 7, .1 = 5,6, .2 = 3,4;
	// lines 1 and 2 fell off the end.
	want := map[string]string{
		"hvro.log":   string(line(7)),
		"hvro.log.1": string(line(5)) + string(line(6)),
		"hvro.log.2": string(line(3)) + string(line(4)),
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(want) {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("files %v, want exactly %d", names, len(want))
	}
	for name, content := range want {
		got, err := os.ReadFile(filepath.Join(filepath.Dir(path), name))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("%s = %q, want %q", name, got, content)
		}
	}
	if _, err := lf.Write([]byte("late\n")); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestLogFileAppendsAndKeepsBigLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hvro.log")
	if err := os.WriteFile(path, []byte("earlier run\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	lf, err := openLogFile(path, 16, 1)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 40) + "\n"
	if _, err := lf.Write([]byte(big)); err != nil {
		t.Fatal(err)
	}
	lf.Close()
	if got, _ := os.ReadFile(path + ".1"); string(got) != "earlier run\n" {
		t.Errorf("hvro.log.1 = %q, want the earlier run's log", got)
	}
	if got, _ := os.ReadFile(path); string(got) != big {
		t.Errorf("hvro.log = %q, want the whole oversized line", got)
	}
	if _, err := openLogFile(path, 0, 1); err == nil {
		t.Error("openLogFile accepted a zero size limit")
	}
}

type fakeEvents struct{ got []string }

func (f *fakeEvents) Info(eid uint32, msg string) error {
	f.got = append(f.got, fmt.Sprintf("info/%d %s", eid, msg))
	return nil
}
func (f *fakeEvents) Warning(eid uint32, msg string) error {
	f.got = append(f.got, fmt.Sprintf("warning/%d %s", eid, msg))
	return nil
}
func (f *fakeEvents) Error(eid uint32, msg string) error {
	f.got = append(f.got, fmt.Sprintf("error/%d %s", eid, msg))
	return errors.New("event log full") // must not fail the log call
}

func TestEventLogHandler(t *testing.T) {
	var buf bytes.Buffer
	ev := &fakeEvents{}
	h := newEventLogHandler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), ev)
	log := slog.New(h).With("component", "orchestrator")
	log.Debug("pass", "pair", "vm1")
	log.Info("converged", "pair", "vm1")
	log.Warn("ECX endpoint failed", "cluster", "cluster1", "error", "dial tcp: connection refused")
	log.WithGroup("step").Error("step failed", "pair", "vm1", slog.Group("host", "name", "node1"), "op", 42)
	if err := h.Handle(context.Background(), slog.NewRecord(time.Time{}, slog.LevelError, "direct", 0)); err != nil {
		t.Errorf("Handle returned the event log's error: %v", err)
	}

	want := []string{
		`warning/2 ECX endpoint failed component=orchestrator cluster=cluster1 error="dial tcp: connection refused"`,
		`error/3 step failed component=orchestrator step.pair=vm1 step.host.name=node1 step.op=42`,
		`error/3 direct`,
	}
	if strings.Join(ev.got, "\n") != strings.Join(want, "\n") {
		t.Errorf("event log got:\n%s\nwant:\n%s", strings.Join(ev.got, "\n"), strings.Join(want, "\n"))
	}
	if n := strings.Count(buf.String(), "\n"); n != 5 {
		t.Errorf("the log file got %d records, want all 5:\n%s", n, buf.String())
	}
	if !strings.Contains(buf.String(), `"step":{"pair":"vm1","host":{"name":"node1"},"op":42}`) {
		t.Errorf("the JSON log lost the group structure:\n%s", buf.String())
	}
	if got := newEventLogHandler(slog.DiscardHandler, nil); got != slog.DiscardHandler {
		t.Error("without an event log the handler should be the plain one")
	}
}
