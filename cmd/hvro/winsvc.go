package main

// hvro service runs hvro as a Windows service (winsvc_windows.go). The
// parts that need no Windows API live here, so that they are built and
// tested on every platform: the arguments, the self-rotating log file and
// the handler that copies warnings and errors to the Windows event log.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

const defaultServiceName = "hvro"

const serviceUsage = `usage: hvro service ACTION [flags]   (Windows; on Linux use deploy/systemd)
  install --config C:\ProgramData\hvro\hvro.yaml [--name hvro] [--log-file F]
                 register hvro with the Service Control Manager (run as Administrator)
  uninstall [--name hvro]
                 stop the service and remove it; the configuration and the store stay
  run --config F [--name hvro] [--log-file F]
                 what the Service Control Manager starts: hvro serve as a service
`

// serviceArgs are the parsed arguments of hvro service.
type serviceArgs struct {
	action  string // install, uninstall or run
	name    string // the service name in the Service Control Manager
	config  string // hvro.yaml
	logFile string // "" means logs\hvro.log next to the configuration
}

// parseServiceArgs checks the arguments of hvro service; the error names
// the argument that was wrong.
func parseServiceArgs(args []string) (serviceArgs, error) {
	if len(args) == 0 {
		return serviceArgs{}, errors.New("an action is required: install, uninstall or run")
	}
	sa := serviceArgs{action: args[0]}
	switch sa.action {
	case "install", "uninstall", "run":
	case "-h", "--help", "help":
		return serviceArgs{}, flag.ErrHelp
	default:
		return serviceArgs{}, fmt.Errorf("unknown action %q: want install, uninstall or run", sa.action)
	}
	fs := flag.NewFlagSet("hvro service "+sa.action, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // the caller prints one message and the usage
	fs.StringVar(&sa.name, "name", defaultServiceName, "service name")
	if sa.action != "uninstall" {
		fs.StringVar(&sa.config, "config", "", "configuration file (hvro.yaml)")
		fs.StringVar(&sa.logFile, "log-file", "", "log file (default: logs\\hvro.log next to the configuration)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return serviceArgs{}, fmt.Errorf("%s: %w", sa.action, err)
	}
	switch {
	case fs.NArg() > 0:
		return serviceArgs{}, fmt.Errorf("%s: unexpected argument %q", sa.action, fs.Arg(0))
	case sa.action != "uninstall" && strings.TrimSpace(sa.config) == "":
		return serviceArgs{}, fmt.Errorf("%s: --config is required", sa.action)
	}
	if err := checkServiceName(sa.name); err != nil {
		return serviceArgs{}, fmt.Errorf("%s: --name %q: %w", sa.action, sa.name, err)
	}
	return sa, nil
}

// checkServiceName applies the Service Control Manager's rules for a
// service name (at most 256 characters, no slash or backslash), plus no
// spaces, so that the name works unquoted in sc.exe and Start-Service.
func checkServiceName(name string) error {
	switch {
	case name == "":
		return errors.New("must not be empty")
	case len(name) > 256:
		return errors.New("is longer than 256 characters")
	case strings.ContainsAny(name, `/\ "`):
		return errors.New("must not contain a slash, backslash, space or quote")
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return errors.New("must not contain control characters")
		}
	}
	return nil
}

// serviceCmd is hvro service: install, uninstall or run hvro as a Windows
// service. serviceAction is per platform.
func serviceCmd(args []string, stdout, stderr io.Writer) int {
	sa, err := parseServiceArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, serviceUsage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "hvro service: %v\n%s", err, serviceUsage)
		return 2
	}
	return serviceAction(sa, stdout, stderr)
}

// logFile is an append-only log that rotates itself, because a Windows
// service has no journald or logrotate: when a write would take the file
// past max bytes, hvro.log becomes hvro.log.1, hvro.log.1 becomes
// hvro.log.2, and so on; the file past keep is deleted.
type logFile struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

func openLogFile(path string, max int64, keep int) (*logFile, error) {
	if max <= 0 || keep < 1 {
		return nil, fmt.Errorf("log file %s: size limit %d and %d old files: both must be positive", path, max, keep)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("log file %s: %w", path, err)
	}
	l := &logFile{path: path, max: max, keep: keep}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// Write appends p, rotating first when p would not fit. A record larger
// than max still goes into one file: a log line is never split.
func (l *logFile) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return 0, fmt.Errorf("log file %s is closed", l.path)
	}
	if l.size > 0 && l.size+int64(len(p)) > l.max {
		if err := l.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := l.f.Write(p)
	l.size += int64(n)
	return n, err
}

// rotate closes the file before renaming it: Windows cannot rename an open
// file.
func (l *logFile) rotate() error {
	if err := l.f.Close(); err != nil {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	l.f = nil
	old := func(i int) string { return fmt.Sprintf("%s.%d", l.path, i) }
	if err := os.Remove(old(l.keep)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	for i := l.keep - 1; i >= 1; i-- {
		if err := os.Rename(old(i), old(i+1)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("log file %s: %w", l.path, err)
		}
	}
	if err := os.Rename(l.path, old(1)); err != nil {
		return fmt.Errorf("log file %s: %w", l.path, err)
	}
	return l.open()
}

// Close closes the file; later writes fail.
func (l *logFile) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// eventSink is the part of the Windows event log (eventlog.Log) that hvro
// writes to.
type eventSink interface {
	Info(eid uint32, msg string) error
	Warning(eid uint32, msg string) error
	Error(eid uint32, msg string) error
}

// Event IDs in the Application log (an EventCreate source takes 1 to 1000).
const (
	eventIDInfo    = 1
	eventIDWarning = 2
	eventIDError   = 3
)

// eventLogHandler passes every record to next and copies warnings and
// errors to the Windows event log, where Windows admins and their
// monitoring look first; the full log stays in the log file.
type eventLogHandler struct {
	next   slog.Handler
	sink   eventSink
	prefix string   // the open groups, "a.b."
	attrs  []string // key=value of WithAttrs, already prefixed
}

func newEventLogHandler(next slog.Handler, sink eventSink) slog.Handler {
	if sink == nil {
		return next
	}
	return &eventLogHandler{next: next, sink: sink}
}

func (h *eventLogHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *eventLogHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.next.Handle(ctx, r)
	if r.Level < slog.LevelWarn {
		return err
	}
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range h.attrs {
		b.WriteString(" ")
		b.WriteString(a)
	}
	r.Attrs(func(a slog.Attr) bool {
		for _, s := range flattenAttr(h.prefix, a) {
			b.WriteString(" ")
			b.WriteString(s)
		}
		return true
	})
	// The event log is a copy: its failure must not fail the log call.
	if r.Level >= slog.LevelError {
		_ = h.sink.Error(eventIDError, b.String())
	} else {
		_ = h.sink.Warning(eventIDWarning, b.String())
	}
	return err
}

func (h *eventLogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append([]string(nil), h.attrs...)
	for _, a := range as {
		c.attrs = append(c.attrs, flattenAttr(h.prefix, a)...)
	}
	return &c
}

func (h *eventLogHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.next = h.next.WithGroup(name)
	c.prefix = h.prefix + name + "."
	return &c
}

// flattenAttr renders an attribute as key=value strings, groups as
// dotted keys; values with spaces are quoted.
func flattenAttr(prefix string, a slog.Attr) []string {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		var out []string
		for _, g := range v.Group() {
			out = append(out, flattenAttr(p, g)...)
		}
		return out
	}
	if a.Key == "" {
		return nil
	}
	s := v.String()
	if strings.ContainsAny(s, " \t\r\n\"=") || s == "" {
		s = fmt.Sprintf("%q", s)
	}
	return []string{prefix + a.Key + "=" + s}
}
