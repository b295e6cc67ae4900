package replica

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/masterzen/winrm"
)

const (
	// maxCommandLine is cmd.exe's limit: WinRM runs the command line
	// through cmd.exe, which answers "The command line is too long." beyond.
	maxCommandLine = 8191
	// cleanupTimeout bounds deleting a shell after the command ended or
	// was cancelled.
	cleanupTimeout = 10 * time.Second
	// maxOutput bounds what is kept of stdout or stderr (the rest is read
	// and dropped); the driver's scripts print a few hundred bytes.
	maxOutput = 1 << 20
)

// commandLine is what WinRM runs for a script: powershell.exe with the
// script as UTF-16LE base64. -NoProfile keeps a host's profile from
// printing or failing; -NonInteractive makes any prompt an error.
func commandLine(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		b[2*i], b[2*i+1] = byte(c), byte(c>>8)
	}
	return "powershell.exe -NoProfile -NonInteractive -EncodedCommand " + base64.StdEncoding.EncodeToString(b)
}

// rawResult is what a finished command left.
type rawResult struct {
	stdout, stderr []byte
	exit           int
}

// call describes one driver operation for errors and logs.
type call struct {
	op string // "start VM"
	vm string
}

func (c call) fail(d *Driver, kind error, reason, msg string, err error) *Error {
	return &Error{Host: d.host, Op: c.op, VM: c.vm, Kind: kind, Reason: reason, Message: msg, Err: err}
}

// run executes one script on the host and hands its JSON success object to
// parse; a parse error is bad output. Every failure is an *Error.
func (d *Driver) run(ctx context.Context, c call, script string, parse func(obj []byte) error) error {
	start := time.Now()
	out, err := d.runScript(ctx, c, script)
	if err == nil {
		out, err = d.result(c, out)
	}
	if err == nil {
		if perr := parse(out.stdout); perr != nil {
			e := c.fail(d, ErrUnknown, ReasonBadOutput, perr.Error(), nil)
			e.Excerpt = excerpt(out.stdout, nil)
			err = e
		}
	}
	outcome := Outcome(err)
	if d.onRequest != nil {
		d.onRequest(d.host, outcome, time.Since(start))
	}
	if err != nil {
		d.log.Debug("winrm command failed", "op", c.op, "vm", c.vm, "outcome", outcome, "duration", time.Since(start), "error", err)
		return err
	}
	d.log.Debug("winrm command", "op", c.op, "vm", c.vm, "outcome", outcome, "duration", time.Since(start))
	return nil
}

// result checks a finished command's output.
func (d *Driver) result(c call, r rawResult) (rawResult, error) {
	obj, se, err := parseResult(r.stdout, r.exit)
	if err != nil {
		e := c.fail(d, ErrUnknown, ReasonBadOutput, err.Error(), nil)
		e.Excerpt = excerpt(r.stdout, r.stderr)
		if r.exit == 1 && len(bytes.TrimSpace(r.stdout)) == 0 && bytes.Contains(r.stderr, []byte("The command line is too long.")) {
			e.Kind, e.Reason, e.Message = ErrPermanent, ReasonCommandLineTooLong, "cmd.exe refused the command line as too long"
		}
		return rawResult{}, e
	}
	if se != nil {
		kind, reason := classify(*se)
		e := c.fail(d, kind, reason, stripOwnReason(se.Message), nil)
		if _, own := ownReason(se.Message); !own {
			// The record of the scripts' own throw says nothing more.
			e.Type, e.FQID, e.Category, e.HResult = se.Type, se.FQID, se.Category, se.HResult
		}
		if e.Message == "" {
			e.Message = "the script reported an error without a message"
		}
		return rawResult{}, e
	}
	r.stdout = obj
	return r, nil
}

// ending is an abandoned command on a VM: done closes when its goroutine
// (and so its shell deletion) has ended; the next command on the VM waits
// for that, at the latest until by.
type ending struct {
	done chan struct{}
	by   time.Time
}

// runScript runs a script with the per-host bound and the command timeout.
// On cancel or timeout it returns at once and gives the host's slot back:
// the command's goroutine goes on without a caller (its request in flight
// is aborted and its shell deleted in the background) and is counted as
// abandoned until it ends. If the WinRM library itself is stuck, the
// goroutine never ends, but it holds only one of MaxShells, not a slot.
func (d *Driver) runScript(ctx context.Context, c call, script string) (rawResult, error) {
	line := commandLine(script)
	if len(line) > maxCommandLine {
		return rawResult{}, c.fail(d, ErrPermanent, ReasonCommandLineTooLong,
			fmt.Sprintf("the encoded command line has %d characters; cmd.exe accepts %d (shorten the VM name or path)", len(line), maxCommandLine), nil)
	}
	if c.vm != "" {
		if v, ok := d.ending.Load(c.vm); ok {
			e := v.(*ending)
			// Bounded: by then the deletion request has ended one way or
			// the other; a goroutine still running is stuck in the WinRM
			// library, not in a command on the host.
			wait := time.NewTimer(time.Until(e.by))
			defer wait.Stop()
			select {
			case <-e.done:
			case <-wait.C:
			case <-ctx.Done():
				reason, msg, err := ctxError(ctx, ctx.Err(), d.timeout.String())
				return rawResult{}, c.fail(d, ErrTransient, reason, msg+" (an earlier command on this VM, whose caller gave up, is still ending on the host)", err)
			}
		}
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		reason, msg, err := ctxError(ctx, ctx.Err(), d.timeout.String())
		return rawResult{}, c.fail(d, ErrTransient, reason, msg+" (waiting for a free slot on the host)", err)
	}
	defer func() { <-d.sem }()
	cctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	select {
	case d.shells <- struct{}{}:
	case <-cctx.Done():
		reason, msg, err := ctxError(ctx, cctx.Err(), d.timeout.String())
		return rawResult{}, c.fail(d, ErrTransient, reason,
			fmt.Sprintf("%s (the host still has %d commands whose callers gave up)", msg, d.Abandoned()), err)
	}
	d.bgMu.RLock()
	select {
	case <-d.closed:
		d.bgMu.RUnlock()
		<-d.shells
		return rawResult{}, c.fail(d, ErrPermanent, ReasonInvalidArgument, "driver closed", nil)
	default:
	}
	d.bg.Add(1)
	d.bgMu.RUnlock()
	type outcome struct {
		r   rawResult
		err error
	}
	done := make(chan outcome, 1)
	// left is set (under the lock) when the caller stops waiting, so the
	// goroutine knows whether it ends an abandoned command.
	var mu sync.Mutex
	var left time.Time
	var stuck *time.Timer
	var ended *ending // set with left, when the command has a VM
	go func() {
		defer d.bg.Done()
		defer func() { <-d.shells }()
		r, err := d.exec(cctx, line)
		mu.Lock()
		defer mu.Unlock()
		if !left.IsZero() {
			stuck.Stop()
			d.abandoned.Add(-1)
			d.log.Info("winrm abandoned command ended", "op", c.op, "vm", c.vm, "after", time.Since(left))
			if ended != nil {
				close(ended.done)
				d.ending.CompareAndDelete(c.vm, ended)
			}
		}
		done <- outcome{r, err}
	}()
	var o outcome
	select {
	case o = <-done:
	case <-cctx.Done():
		mu.Lock()
		select {
		case o = <-done: // finished just in time: keep the result
			mu.Unlock()
		default:
			left = time.Now()
			if c.vm != "" {
				ended = &ending{done: make(chan struct{}), by: left.Add(d.opTimeout + cleanupTimeout)}
				d.ending.Store(c.vm, ended)
			}
			n := d.abandoned.Add(1)
			// Its requests are aborted and its shell deletion is bounded:
			// a goroutine still running after that is stuck in the library.
			stuck = time.AfterFunc(d.opTimeout+cleanupTimeout, func() {
				d.log.Error("winrm command stuck in the WinRM library after its caller gave up; its goroutine is left behind", "op", c.op, "vm", c.vm, "abandoned", d.Abandoned())
			})
			mu.Unlock()
			d.log.Warn("winrm command abandoned: its caller stopped waiting, the host's slot is free again", "op", c.op, "vm", c.vm, "abandoned", n)
			if d.onAbandoned != nil {
				d.onAbandoned(d.host)
			}
			reason, msg, err := ctxError(ctx, cctx.Err(), d.timeout.String())
			return rawResult{}, c.fail(d, ErrTransient, reason, msg, err)
		}
	}
	if o.err != nil {
		return rawResult{}, d.wrapExecError(ctx, cctx, c, o.err)
	}
	return o.r, nil
}

func (d *Driver) wrapExecError(ctx, cctx context.Context, c call, err error) error {
	if cctx.Err() != nil {
		reason, msg, cerr := ctxError(ctx, cctx.Err(), d.timeout.String())
		return c.fail(d, ErrTransient, reason, msg, cerr)
	}
	var te *transportError
	if errors.As(err, &te) {
		return c.fail(d, te.kind, te.reason, te.Error(), te.err)
	}
	// masterzen's own errors: a response without the ids it needs.
	return c.fail(d, ErrUnknown, ReasonWSManFault, "WinRM exchange failed: "+err.Error(), err)
}

// exec runs a command line in a new shell and always deletes the shell.
func (d *Driver) exec(ctx context.Context, line string) (rawResult, error) {
	tr := &transport{d: d}
	params := winrm.NewParameters(wsDuration(d.opTimeout), "en-US", envelopeSize)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	client, err := winrm.NewClientWithParameters(d.endpoint, d.user, d.password, params)
	if err != nil {
		return rawResult{}, err
	}

	// Create the shell detached from cancellation: if the caller gives up
	// while the request is in flight, the host may still create it, and
	// only a known shell can be deleted.
	createCtx, cancelCreate := context.WithTimeout(context.WithoutCancel(ctx), d.opTimeout+10*time.Second)
	defer cancelCreate()
	tr.setContext(createCtx)
	shell, err := client.CreateShell()
	if err != nil {
		return rawResult{}, err
	}
	defer func() {
		cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		tr.setContext(cleanCtx)
		if d.beforeDelete != nil {
			d.beforeDelete()
		}
		if err := shell.Close(); err != nil {
			d.log.Debug("winrm delete shell failed", "error", err)
		}
	}()
	if granted, ok := tr.grantedIdle(); ok && granted > d.shellIdle {
		// hvro's restart hold after a crash counts on the host deleting an
		// orphaned shell within the idle timeout asked for.
		return rawResult{}, &transportError{kind: ErrPermanent, reason: ReasonShellIdleTimeout,
			msg: fmt.Sprintf("the host keeps an idle shell for %s, longer than the %s hvro asked for (winrm.shell_idle_timeout): a command orphaned by a crash of hvro could outlive the restart hold; set winrm.shell_idle_timeout to at least %s", granted, d.shellIdle, granted)}
	}
	if err := ctx.Err(); err != nil {
		return rawResult{}, err
	}

	tr.setContext(ctx)
	cmd, err := shell.Execute(line)
	if err != nil {
		return rawResult{}, err
	}
	var stdout, stderr cappedBuffer
	var outErr, errErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _, outErr = io.Copy(&stdout, cmd.Stdout) }()
	go func() { defer wg.Done(); _, errErr = io.Copy(&stderr, cmd.Stderr) }()
	cmd.Wait()
	wg.Wait()
	if err := errors.Join(outErr, errErr); err != nil {
		var te *transportError
		if errors.As(outErr, &te) {
			return rawResult{}, te
		}
		if errors.As(errErr, &te) {
			return rawResult{}, te
		}
		return rawResult{}, err
	}
	return rawResult{stdout: stdout.Bytes(), stderr: stderr.Bytes(), exit: cmd.ExitCode()}, nil
}

// wsDuration formats an xs:duration for w:OperationTimeout.
func wsDuration(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

// cappedBuffer keeps the first maxOutput bytes written to it.
type cappedBuffer struct{ bytes.Buffer }

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
