package ecx

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ScriptRun is one run of a start or stop script, kept in State.
type ScriptRun struct {
	Group    string            `json:"group"`
	Server   string            `json:"server"`
	Phase    string            `json:"phase"` // start or stop
	Argv     []string          `json:"argv"`
	Env      map[string]string `json:"env"` // the CLP_* variables and COMPUTERNAME it got
	Started  time.Time         `json:"started"`
	Duration time.Duration     `json:"duration_ns"`
	Exit     int               `json:"exit"`            // -1 when it did not exit by itself
	Error    string            `json:"error,omitempty"` // timeout, killed, could not start, non-zero exit
	Output   string            `json:"output"`          // the end of stdout+stderr
}

const (
	keepOutput    = 64 << 10 // bytes of output kept while a script runs
	stateOutput   = 4 << 10  // bytes of it shown in State
	logOutput     = 1 << 10  // bytes of it logged
	scriptKillLag = 2 * time.Second
)

// runScript runs the group's start or stop command on srv the way ECX runs
// start.bat/stop.bat: the lab's environment plus CLP_* and COMPUTERNAME, in
// CLP_SCRIPT_PATH, bounded by the script timeout. A non-zero exit, a timeout
// or a crash of srv is a failure. A group without that command succeeds at once.
func (c *Cluster) runScript(g *group, srv, phase, event, factor string) error {
	argv := g.cfg.Scripts.Start
	if phase == "stop" {
		argv = g.cfg.Scripts.Stop
	}
	if len(argv) == 0 {
		return nil
	}
	var sctx context.Context
	var index int
	c.update(func() {
		s := c.server(srv)
		sctx, index = s.ctx, s.index
	})
	ctx, cancel := context.WithTimeout(sctx, g.cfg.Scripts.Timeout)
	defer cancel()

	clp := map[string]string{
		"CLP_EVENT":        event,
		"CLP_SERVER":       "OTHER",
		"CLP_DISK":         "SUCCESS",
		"CLP_SCRIPT_PATH":  g.dir,
		"CLP_GROUPNAME":    g.cfg.Name,
		"CLP_RESOURCENAME": scriptName(g.cfg.Name),
		"CLP_PRIORITY":     strconv.Itoa(index + 1),
		"COMPUTERNAME":     computerName(srv),
	}
	if index == 0 {
		clp["CLP_SERVER"] = "HOME"
	}
	// Windows cannot hold an empty variable: an empty factor is an unset one.
	if factor != "" {
		clp["CLP_FACTOR"] = factor
	}
	env := make([]string, 0, len(os.Environ())+len(g.cfg.Scripts.Env)+len(clp))
	for _, kv := range append(os.Environ(), g.cfg.Scripts.Env...) {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := clp[k]; ours || strings.HasPrefix(k, "CLP_") {
			continue // the emulator's values win, and no stray CLP_* leaks in
		}
		env = append(env, kv)
	}
	for k, v := range clp {
		env = append(env, k+"="+v)
	}

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = g.dir
	cmd.Env = env
	out := &tailBuffer{max: keepOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = scriptKillLag
	setProcessGroup(cmd)

	run := ScriptRun{Group: g.cfg.Name, Server: srv, Phase: phase, Argv: append([]string{}, argv...), Env: clp, Started: time.Now(), Exit: -1}
	log := c.log.With("group", g.cfg.Name, "server", srv, "phase", phase, "event", event, "factor", factor)
	log.Info("script starting", "argv", argv)
	err := cmd.Run()
	run.Duration = time.Since(run.Started)
	if cmd.ProcessState != nil && cmd.ProcessState.Exited() {
		run.Exit = cmd.ProcessState.ExitCode()
	}
	switch {
	case err == nil:
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%s script timed out after %s", phase, g.cfg.Scripts.Timeout)
	case sctx.Err() != nil:
		err = fmt.Errorf("%s script killed: server %s is down or the cluster is closing", phase, srv)
	case run.Exit > 0:
		err = fmt.Errorf("%s script exited with %d", phase, run.Exit)
	default:
		err = fmt.Errorf("%s script %q: %w", phase, argv[0], err)
	}
	output := out.String()
	run.Output = tail(output, stateOutput)
	if err != nil {
		run.Error = err.Error()
		log.Warn("script failed", "exit", run.Exit, "duration", run.Duration, "err", err, "output", tail(output, logOutput))
	} else {
		log.Info("script done", "exit", run.Exit, "duration", run.Duration, "output", tail(output, logOutput))
	}
	c.update(func() {
		c.runs = append(c.runs, run)
		if len(c.runs) > keepRecords {
			c.runs = c.runs[len(c.runs)-keepRecords:]
		}
	})
	return err
}

// computerName is what Windows puts in COMPUTERNAME for a host: its NetBIOS
// name, upper case and at most 15 characters. ECX server names are usually
// lower case, so a hook that compares them must ignore case.
func computerName(server string) string {
	name := strings.ToUpper(server)
	if len(name) > 15 {
		name = name[:15]
	}
	return name
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
