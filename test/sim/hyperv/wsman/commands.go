package wsman

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"
	"time"
)

const (
	signalTerminate = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/terminate"
	signalCtrlC     = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_c"
	signalCtrlBreak = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/ctrl_break"
	stateRunning    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"
	stateDone       = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"
)

// responseOverhead is room left in a Receive response for the envelope,
// stream and state elements around the base64 output.
const responseOverhead = 4096

func (s *Server) command(sh *shell, req *request) ([]byte, *fault) {
	if req.Body == nil || req.Body.Name != (xml.Name{Space: nsShell, Local: "CommandLine"}) {
		return nil, faultInvalidBody()
	}
	cmdEl := req.Body.child(nsShell, "Command")
	if cmdEl == nil || strings.TrimSpace(cmdEl.Text) == "" {
		return nil, faultInvalidParameter()
	}
	program := cmdEl.Text
	var args []string
	for _, a := range req.Body.children(nsShell, "Arguments") {
		args = append(args, a.Text)
	}
	line := strings.Join(append([]string{program}, args...), " ")
	skip := strings.EqualFold(req.Options["winrs_skip_cmd_shell"], "TRUE")
	if skip && (!strings.ContainsAny(program, `\/`) || programName(strings.TrimSpace(program)) == "") {
		// Without cmd.exe, WinRS starts the program itself and needs a path
		// to an existing executable (captured: "powershell.exe" fails).
		return nil, faultFileNotFound()
	}
	ctx, cancel := context.WithCancel(s.base)
	c := &command{
		id:       newGUID(),
		line:     line,
		skipCmd:  skip,
		start:    s.cfg.Now(),
		ctx:      ctx,
		cancel:   cancel,
		done:     make(chan struct{}),
		finished: make(chan struct{}),
		removed:  make(chan struct{}),
		recv:     make(chan struct{}, 1),
		stdinEOF: make(chan struct{}),
	}
	s.mu.Lock()
	if sh.gone {
		s.mu.Unlock()
		cancel()
		return nil, faultShellNotFound(sh.id)
	}
	sh.commands[c.id] = c
	s.wg.Add(1)
	s.mu.Unlock()
	go s.run(sh, c, program, strings.Join(args, " "))
	body := "<rsp:CommandResponse><rsp:CommandId>" + c.id + "</rsp:CommandId></rsp:CommandResponse>"
	return envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandResponse", req.MessageID, body), nil
}

// run executes a command and publishes its result.
func (s *Server) run(sh *shell, c *command, program, args string) {
	defer s.wg.Done()
	a := sh.acct
	who := strings.ToLower(s.cfg.Host + `\` + a.name)
	if a.domain != "" {
		who = strings.ToLower(a.domain + `\` + a.name)
	}
	env := &cmdEnv{
		host:       s.cfg.Host,
		whoami:     who,
		profile:    `C:\Users\` + a.name,
		powershell: s.cfg.PowerShell,
		stdin:      c.readStdin,
	}
	var res Result
	if c.skipCmd {
		var out output
		res.ExitCode = runProgram(c.ctx, env, programName(strings.TrimSpace(program)), args, nil, &out)
		res.Stdout, res.Stderr = out.stdout.Bytes(), out.stderr.Bytes()
	} else {
		res = runCmdExe(c.ctx, env, c.line)
	}
	canceled := c.ctx.Err() != nil
	c.mu.Lock()
	sig := c.signal
	if canceled && (sig == "ctrl_c" || sig == "ctrl_break") {
		res.ExitCode = statusControlCExit
	}
	c.result = res
	c.mu.Unlock()
	c.cancel()
	close(c.done)
	if s.cfg.Log != nil {
		s.cfg.Log(CommandRecord{
			Start:        c.start,
			Duration:     s.cfg.Now().Sub(c.start),
			Host:         s.cfg.Host,
			User:         a.key,
			ShellID:      sh.id,
			CommandID:    c.id,
			CommandLine:  c.line,
			SkipCmdShell: c.skipCmd,
			Script:       strings.Join(env.scripts, "\n"),
			ExitCode:     res.ExitCode,
			Stdout:       res.Stdout,
			Stderr:       res.Stderr,
			Canceled:     canceled,
			Signal:       sig,
		})
	}
	close(c.finished)
}

// readStdin waits for the end of the stdin stream.
func (c *command) readStdin(ctx context.Context) ([]byte, error) {
	select {
	case <-c.stdinEOF:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]byte{}, c.stdin...), nil
}

// remove takes a command out of service: its context is cancelled and
// waiting Receives are answered with a fault.
func (c *command) remove(shellGone bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removedSet {
		return
	}
	c.removedSet = true
	c.shellGone = shellGone
	c.cancel()
	close(c.removed)
}

func (s *Server) findCommand(sh *shell, id string) *command {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh.commands == nil {
		return nil
	}
	return sh.commands[strings.ToUpper(id)]
}

// receive long-polls for a command's output: it answers as soon as the
// command has finished, or with the TimedOut fault when timeout passes
// first, so the client polls again.
func (s *Server) receive(ctx context.Context, sh *shell, req *request, timeout time.Duration, maxEnv int) ([]byte, *fault) {
	if req.Body == nil || req.Body.Name != (xml.Name{Space: nsShell, Local: "Receive"}) {
		return nil, faultInvalidBody()
	}
	ds := req.Body.child(nsShell, "DesiredStream")
	if ds == nil {
		return nil, faultInvalidParameter()
	}
	id, ok := ds.attr("", "CommandId")
	if !ok || id == "" {
		return nil, faultInvalidParameter()
	}
	c := s.findCommand(sh, id)
	if c == nil {
		return nil, faultCommandNotFound()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case c.recv <- struct{}{}:
	case <-timer.C:
		return nil, faultTimedOut()
	case <-ctx.Done():
		return nil, nil
	}
	defer func() { <-c.recv }()
	select {
	case <-c.done:
		// A command that finished but was discarded meanwhile (terminate,
		// shell deleted) is gone for the client too.
		select {
		case <-c.removed:
			return nil, c.goneFault(sh.id)
		default:
		}
	case <-c.removed:
		return nil, c.goneFault(sh.id)
	case <-timer.C:
		return nil, faultTimedOut()
	case <-ctx.Done():
		return nil, nil
	}
	return envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/ReceiveResponse", req.MessageID, c.nextOutput(maxEnv)), nil
}

func (c *command) goneFault(shellID string) *fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shellGone {
		return faultShellNotFound(shellID)
	}
	return faultCommandNotFound()
}

// nextOutput renders the next part of a finished command's output that fits
// in maxEnv; the last part carries the End markers and the exit code.
func (c *command) nextOutput(maxEnv int) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	budget := (maxEnv - responseOverhead) / 4 * 3
	if budget < 1024 {
		budget = 1024
	}
	var b strings.Builder
	stream := func(name string, data []byte, sent *int) {
		n := len(data) - *sent
		if n <= 0 || budget <= 0 {
			return
		}
		if n > budget {
			n = budget
		}
		budget -= n
		b.WriteString(`<rsp:Stream Name="` + name + `" CommandId="` + c.id + `">`)
		b.WriteString(base64.StdEncoding.EncodeToString(data[*sent : *sent+n]))
		b.WriteString("</rsp:Stream>")
		*sent += n
	}
	stream("stdout", c.result.Stdout, &c.sentOut)
	stream("stderr", c.result.Stderr, &c.sentErr)
	b2 := "<rsp:ReceiveResponse>" + b.String()
	if c.sentOut < len(c.result.Stdout) || c.sentErr < len(c.result.Stderr) {
		return b2 + `<rsp:CommandState CommandId="` + c.id + `" State="` + stateRunning + `"/></rsp:ReceiveResponse>`
	}
	return b2 +
		`<rsp:Stream Name="stdout" CommandId="` + c.id + `" End="true"></rsp:Stream>` +
		`<rsp:Stream Name="stderr" CommandId="` + c.id + `" End="true"></rsp:Stream>` +
		`<rsp:CommandState CommandId="` + c.id + `" State="` + stateDone + `"><rsp:ExitCode>` +
		strconv.FormatUint(uint64(uint32(c.result.ExitCode)), 10) + "</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse>"
}

// send accepts stdin for a command. Commands read it only when they are
// powershell.exe reading its script from stdin ("-Command -"); otherwise it
// is accepted and discarded, like input nobody reads.
func (s *Server) send(sh *shell, req *request) ([]byte, *fault) {
	if req.Body == nil || req.Body.Name != (xml.Name{Space: nsShell, Local: "Send"}) {
		return nil, faultInvalidBody()
	}
	streams := req.Body.children(nsShell, "Stream")
	if len(streams) == 0 {
		return nil, faultInvalidParameter()
	}
	type chunk struct {
		c    *command
		data []byte
		end  bool
	}
	var chunks []chunk
	for _, st := range streams {
		name, _ := st.attr("", "Name")
		id, _ := st.attr("", "CommandId")
		if !strings.EqualFold(name, "stdin") || id == "" {
			return nil, faultInvalidParameter()
		}
		c := s.findCommand(sh, id)
		if c == nil {
			return nil, faultCommandNotFound()
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Text))
		if err != nil {
			return nil, faultInvalidParameter()
		}
		end, _ := st.attr("", "End")
		chunks = append(chunks, chunk{c, data, strings.EqualFold(end, "true")})
	}
	for _, ch := range chunks {
		ch.c.mu.Lock()
		if !ch.c.eofClosed {
			ch.c.stdin = append(ch.c.stdin, ch.data...)
			if ch.end {
				ch.c.eofClosed = true
				close(ch.c.stdinEOF)
			}
		}
		ch.c.mu.Unlock()
	}
	return envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SendResponse", req.MessageID, "<rsp:SendResponse/>"), nil
}

// signal handles terminate (the command is discarded, cancelled if still
// running) and ctrl_c/ctrl_break (a running command is interrupted and ends
// with STATUS_CONTROL_C_EXIT; a finished one is unaffected).
func (s *Server) signal(sh *shell, req *request) ([]byte, *fault) {
	if req.Body == nil || req.Body.Name != (xml.Name{Space: nsShell, Local: "Signal"}) {
		return nil, faultInvalidBody()
	}
	id, _ := req.Body.attr("", "CommandId")
	codeEl := req.Body.child(nsShell, "Code")
	if id == "" || codeEl == nil {
		return nil, faultInvalidParameter()
	}
	code := strings.ToLower(strings.TrimSpace(codeEl.Text))
	c := s.findCommand(sh, id)
	if c == nil {
		return nil, faultCommandNotFound()
	}
	switch code {
	case signalTerminate:
		c.mu.Lock()
		if !isDone(c.done) && c.signal == "" {
			c.signal = "terminate"
		}
		c.mu.Unlock()
		s.mu.Lock()
		if sh.commands != nil {
			delete(sh.commands, c.id)
		}
		s.mu.Unlock()
		c.remove(false)
	case signalCtrlC, signalCtrlBreak:
		c.mu.Lock()
		if !isDone(c.done) && c.signal == "" {
			c.signal = strings.TrimPrefix(code, "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/")
			c.cancel()
		}
		c.mu.Unlock()
	default:
		return nil, faultInvalidParameter()
	}
	return envelope("http://schemas.microsoft.com/wbem/wsman/1/windows/shell/SignalResponse", req.MessageID, "<rsp:SignalResponse/>"), nil
}

func isDone(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// runProgram starts one of the host's programs with an argument string, as
// CreateProcess would (used by cmd.exe and by WINRS_SKIP_CMD_SHELL=TRUE).
func runProgram(ctx context.Context, env *cmdEnv, prog, args string, stdin []byte, out *output) int {
	switch prog {
	case "hostname":
		if strings.TrimSpace(args) != "" {
			out.stderr.WriteString("sethostname: Use the Network Control Panel Applet to set hostname.\r\n")
			return 1
		}
		out.stdout.WriteString(env.host + "\r\n")
		return 0
	case "whoami":
		out.stdout.WriteString(env.whoami + "\r\n")
		return 0
	case "cmd":
		return runNestedCmd(ctx, env, args, stdin, out)
	case "powershell":
		return runPowerShellExe(ctx, env, commandLineToArgv(args), stdin, out)
	}
	return -1
}
