package hyperv

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

// RunPowerShell runs a script on the host as powershell.exe does. encoded
// says the script came through -EncodedCommand, which makes powershell.exe
// write its error stream as CLIXML on a redirected stderr.
func (h *Host) RunPowerShell(ctx context.Context, script string, encoded bool) ps.Result {
	w := h.world
	w.mu.Lock()
	progress := w.progressNoise
	computer := h.ComputerName
	w.mu.Unlock()
	env := map[string]string{
		"COMPUTERNAME":           computer,
		"USERDOMAIN":             strings.ToUpper(firstLabel(w.cfg.Domain)),
		"USERDNSDOMAIN":          strings.ToUpper(w.cfg.Domain),
		"SystemRoot":             `C:\Windows`,
		"PROCESSOR_ARCHITECTURE": "AMD64",
	}
	return ps.Run(ctx, script, ps.Options{
		Commands: h.cmds,
		Env:      env,
		CLIXML:   encoded,
		Progress: progress && encoded,
		Now:      w.now,
	})
}

// firstLabel is a DNS name up to its first dot: node1 of node1.lab.local.
func firstLabel(name string) string {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i]
	}
	return name
}

// SetProgressNoise makes every -EncodedCommand run write the "Preparing
// modules for first use." progress record to stderr, as a fresh Windows
// host does, so clients prove they decide on exit code and stdout.
func (w *World) SetProgressNoise(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.progressNoise = on
}

// CommandRecord is one command a host received (GET /sim/log).
type CommandRecord struct {
	Time        time.Time `json:"time"`
	Host        string    `json:"host"`
	User        string    `json:"user"`
	CommandLine string    `json:"command_line"`
	Script      string    `json:"script,omitempty"`
	ExitCode    int       `json:"exit_code"`
	Stdout      string    `json:"stdout"`
	Stderr      string    `json:"stderr"`
	DurationMS  int64     `json:"duration_ms"`
}

type commandLog struct {
	mu   sync.Mutex
	max  int
	recs []CommandRecord
}

func newCommandLog(max int) *commandLog { return &commandLog{max: max} }

// Record appends a command to the log; the oldest are dropped beyond the cap.
func (w *World) Record(r CommandRecord) {
	l := w.log
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
	// Trim only when twice over the cap, so a full log costs one copy per
	// max records, not one per record.
	if len(l.recs) >= 2*l.max {
		l.recs = append([]CommandRecord(nil), l.recs[len(l.recs)-l.max:]...)
	}
}

// Log returns the recorded commands, oldest first.
func (w *World) Log() []CommandRecord {
	l := w.log
	l.mu.Lock()
	defer l.mu.Unlock()
	recs := l.recs
	if len(recs) > l.max {
		recs = recs[len(recs)-l.max:]
	}
	return append([]CommandRecord(nil), recs...)
}
