package wsman

import (
	"context"
	"crypto/subtle"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// PowerShellFunc runs one decoded PowerShell script for a host and returns
// what powershell.exe would: its stdout, stderr and exit code. encoded says
// the script came through -EncodedCommand, after which powershell.exe
// writes its error stream to a redirected stderr as CLIXML. ctx is
// cancelled when the command is signalled (terminate, ctrl_c), its shell is
// deleted or expires, or the server closes; the function must then return
// promptly.
type PowerShellFunc func(ctx context.Context, script string, encoded bool) Result

// Result is a process outcome. ExitCode is reported to clients as the
// unsigned 32-bit value Windows uses (-1 is 4294967295).
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// CommandRecord describes one command a client ran, for the lab's log.
type CommandRecord struct {
	Start        time.Time
	Duration     time.Duration
	Host         string
	User         string // the account as configured in Config.Users
	ShellID      string
	CommandID    string
	CommandLine  string // rsp:Command and rsp:Arguments joined by spaces
	SkipCmdShell bool   // WINRS_SKIP_CMD_SHELL=TRUE: no cmd.exe layer
	// Script holds the decoded PowerShell script(s) the line ran, joined by
	// newlines when there were several; empty when PowerShell did not run.
	Script   string
	ExitCode int
	Stdout   []byte
	Stderr   []byte
	// Canceled is set when the command was cut short by a signal, its shell
	// being deleted or expiring, or the server closing.
	Canceled bool
	Signal   string // "terminate", "ctrl_c" or "ctrl_break" when signalled while running
}

// Config configures one emulated host's WS-Management service.
type Config struct {
	// Host is the NetBIOS computer name; hostname prints it.
	Host string
	// Users maps account names to passwords. "admin" is a local account and
	// authenticates as the bare name only (Windows refuses MACHINE\admin and
	// UPNs with Basic). "LAB\admin" is a domain account and authenticates as
	// "LAB\admin" (case-insensitive), unless BasicLocalOnly is set.
	Users map[string]string
	// BasicLocalOnly refuses domain accounts with Basic authentication, as
	// real Windows does. Off by default so a lab can use LAB\admin.
	BasicLocalOnly bool
	// RequireHTTPS refuses Basic over plain HTTP with 401, as Windows does
	// with the default AllowUnencrypted=false. Off by default (lab hosts run
	// with AllowUnencrypted=true, as the WinRM clients' docs instruct).
	RequireHTTPS bool
	// PowerShell runs the scripts that powershell.exe receives. Required.
	PowerShell PowerShellFunc
	// MaxShellsPerUser is winrs MaxShellsPerUser (default 30).
	MaxShellsPerUser int
	// MaxEnvelopeSize caps request bodies in bytes (MaxEnvelopeSizekb * 1024;
	// default 512000, the 500 KB of Windows Server 2012 and later). Larger
	// requests get HTTP 413. Responses also never exceed it.
	MaxEnvelopeSize int
	// MaxTimeout caps the OperationTimeout of a request and is used when a
	// request has none (MaxTimeoutms, default 60s).
	MaxTimeout time.Duration
	// ShellIdleTimeout deletes a shell that has seen no request for this
	// long (winrs IdleTimeout, default 2h as Windows reports PT7200.000S).
	// It is also the most a client may ask for in a Create's
	// rsp:IdleTimeOut: a longer request gets this value.
	ShellIdleTimeout time.Duration
	// MinShellIdleTimeout is the least idle timeout a client may ask for;
	// a shorter request gets this value (default 60s, Windows' effective
	// minimum). Labs lower it so that tests need not wait a minute.
	MinShellIdleTimeout time.Duration
	// DeleteWait bounds how long a Delete waits for the shell's commands
	// to end before it answers (default 10s).
	DeleteWait time.Duration
	// Log, when set, receives a record for every command when it ends.
	Log func(CommandRecord)
	// Logger receives diagnostics (faults, expiries); nil discards them.
	Logger *slog.Logger
	// Now is the clock for command records (default time.Now). Timeouts use
	// real timers.
	Now func() time.Time
}

const (
	defaultMaxShellsPerUser = 30
	defaultMaxEnvelopeSize  = 500 * 1024
	defaultMaxTimeout       = 60 * time.Second
	defaultShellIdleTimeout = 7200 * time.Second
	// defaultMinShellIdleTimeout is the least idle timeout Windows keeps a
	// shell for when a client asks for less (MS-WSMV 2.2.4.42, note 28).
	defaultMinShellIdleTimeout = 60 * time.Second
	minEnvelopeSize            = 8192
	// statusControlCExit is what a console process ends with after Ctrl+C
	// (STATUS_CONTROL_C_EXIT, 0xC000013A).
	statusControlCExit = 0xC000013A
	// closeWait bounds how long Close waits for cancelled commands.
	closeWait = 5 * time.Second
)

// account is a configured user.
type account struct {
	key      string // as configured
	domain   string // "" for a local account
	name     string
	password string
}

// Server is one host's WS-Management service. It is an http.Handler to be
// mounted at /wsman (it answers other paths with 404 as HTTP.sys does).
type Server struct {
	cfg      Config
	accounts []account
	log      *slog.Logger
	base     context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	shells  map[string]*shell // by upper-case ShellId
	perUser map[string]int    // open shells by account key
}

type shell struct {
	id       string
	acct     *account
	clientIP string
	commands map[string]*command
	active   int // requests in progress; the idle timer runs only at zero
	idle     *time.Timer
	idleFor  time.Duration // the shell's idle timeout: requested, within the server's bounds
	gone     bool
}

type command struct {
	id      string
	line    string
	skipCmd bool
	start   time.Time
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{} // closed when the command has finished
	// finished closes once the command's run is over, its record logged
	// included.
	finished chan struct{}
	removed  chan struct{} // closed when the command or its shell is gone
	recv     chan struct{} // one Receive at a time

	mu         sync.Mutex
	stdin      []byte
	stdinEOF   chan struct{}
	eofClosed  bool
	signal     string
	shellGone  bool
	result     Result
	sentOut    int
	sentErr    int
	removedSet bool
}

// NewServer validates cfg and returns a running server.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Host == "" {
		return nil, errors.New("wsman: Config.Host is empty")
	}
	if cfg.PowerShell == nil {
		return nil, errors.New("wsman: Config.PowerShell is nil")
	}
	if len(cfg.Users) == 0 {
		return nil, errors.New("wsman: Config.Users is empty; no one could log on")
	}
	if cfg.MaxShellsPerUser == 0 {
		cfg.MaxShellsPerUser = defaultMaxShellsPerUser
	}
	if cfg.MaxEnvelopeSize == 0 {
		cfg.MaxEnvelopeSize = defaultMaxEnvelopeSize
	}
	if cfg.MaxEnvelopeSize < minEnvelopeSize {
		return nil, fmt.Errorf("wsman: Config.MaxEnvelopeSize %d is below the WS-Management minimum of %d", cfg.MaxEnvelopeSize, minEnvelopeSize)
	}
	if cfg.MaxTimeout == 0 {
		cfg.MaxTimeout = defaultMaxTimeout
	}
	if cfg.ShellIdleTimeout == 0 {
		cfg.ShellIdleTimeout = defaultShellIdleTimeout
	}
	if cfg.DeleteWait <= 0 {
		cfg.DeleteWait = 10 * time.Second
	}
	if cfg.MinShellIdleTimeout == 0 {
		cfg.MinShellIdleTimeout = defaultMinShellIdleTimeout
	}
	if cfg.MaxShellsPerUser < 0 || cfg.MaxTimeout < 0 || cfg.ShellIdleTimeout < 0 || cfg.MinShellIdleTimeout < 0 {
		return nil, errors.New("wsman: negative limit in Config")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Server{cfg: cfg, shells: map[string]*shell{}, perUser: map[string]int{}}
	for key, pw := range cfg.Users {
		a, err := parseAccount(key)
		if err != nil {
			return nil, err
		}
		a.password = pw
		s.accounts = append(s.accounts, a)
	}
	s.log = cfg.Logger
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.log = s.log.With("host", cfg.Host)
	s.base, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

func parseAccount(key string) (account, error) {
	a := account{key: key, name: key}
	if strings.ContainsAny(key, "@/") || strings.Count(key, `\`) > 1 {
		return a, fmt.Errorf("wsman: Config.Users key %q: use \"user\" (local) or \"DOMAIN\\user\" (domain)", key)
	}
	if i := strings.IndexByte(key, '\\'); i >= 0 {
		a.domain, a.name = key[:i], key[i+1:]
		if a.domain == "" || a.domain == "." {
			return a, fmt.Errorf("wsman: Config.Users key %q: a local account is written without a domain", key)
		}
	}
	if a.name == "" {
		return a, fmt.Errorf("wsman: Config.Users key %q has an empty user name", key)
	}
	return a, nil
}

// Close cancels every running command, drops every shell and makes the
// server answer 503. It waits up to five seconds for the cancelled commands
// to return and reports those that did not.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, sh := range s.shells {
		s.dropShellLocked(sh)
	}
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-time.After(closeWait):
		return fmt.Errorf("wsman: commands on %s still running %s after cancellation; the PowerShell function ignores its context", s.cfg.Host, closeWait)
	}
}

// Shells reports how many shells are open, for tests and the lab's state.
func (s *Server) Shells() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.shells)
}

// ServeHTTP implements the WinRM listener.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "Microsoft-HTTPAPI/2.0")
	// HTTP.sys matches the registered URL case-insensitively and answers
	// everything else itself.
	if !strings.EqualFold(r.URL.Path, "/wsman") {
		writeNotFound(w)
		return
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	acct := s.authenticate(r)
	if acct == nil {
		w.Header().Add("WWW-Authenticate", "Negotiate")
		w.Header().Add("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	if !soapContentType(r.Header.Get("Content-Type")) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		return
	}
	machine := hostOnly(r.Host)
	if r.ContentLength > int64(s.cfg.MaxEnvelopeSize) {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	if len(r.TransferEncoding) > 0 {
		// MS-WSMV 3.1.4.1.31.8: shells refuse chunked requests.
		s.writeFault(w, internalErrorNotSupported(), "", machine)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(s.cfg.MaxEnvelopeSize)+1))
	if err != nil {
		return // the client went away
	}
	if len(body) > s.cfg.MaxEnvelopeSize {
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusRequestEntityTooLarge)
		return
	}
	req, err := decodeEnvelope(body)
	if err != nil {
		var ee *envelopeError
		relates := ""
		if req != nil {
			relates = req.MessageID
		}
		if errors.As(err, &ee) && ee.kind == errKindXML {
			s.writeFault(w, faultInvalidXML(), relates, machine)
		} else {
			s.writeFault(w, faultInvalidBody(), relates, machine)
		}
		return
	}
	resp, f := s.handle(r, acct, req)
	if f != nil {
		s.log.Debug("wsman fault", "action", req.Action, "code", f.WSManCode, "message", f.Message)
		s.writeFault(w, f, req.MessageID, machine)
		return
	}
	if resp == nil {
		return // the client went away while we waited
	}
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(resp)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp)
}

func (s *Server) writeFault(w http.ResponseWriter, f *fault, relatesTo, machine string) {
	data := faultEnvelope(f, relatesTo, machine)
	w.Header().Set("Content-Type", "application/soap+xml;charset=UTF-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(f.HTTPStatus)
	_, _ = w.Write(data)
}

// internalErrorNotSupported is MS-WSMV's answer to chunked shell requests.
func internalErrorNotSupported() *fault {
	const msg = "The request is not supported. "
	return &fault{Code: "s:Receiver", Subcode: "w:InternalError", Reason: msg, WSManCode: 50, Message: msg, HTTPStatus: http.StatusInternalServerError}
}

// writeNotFound sends HTTP.sys's own 404 page.
func writeNotFound(w http.ResponseWriter) {
	const page = "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n" +
		"<HTML><HEAD><TITLE>Not Found</TITLE>\r\n" +
		"<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n" +
		"<BODY><h2>Not Found</h2>\r\n<hr><p>HTTP Error 404. The requested resource is not found.</p>\r\n</BODY></HTML>\r\n"
	w.Header().Set("Content-Type", "text/html; charset=us-ascii")
	w.Header().Set("Content-Length", strconv.Itoa(len(page)))
	w.WriteHeader(http.StatusNotFound)
	_, _ = io.WriteString(w, page)
}

func soapContentType(v string) bool {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil || mt != "application/soap+xml" {
		return false
	}
	cs, ok := params["charset"]
	return !ok || strings.EqualFold(cs, "utf-8")
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// authenticate checks Basic credentials; anything else (none, Negotiate,
// Kerberos, malformed) is refused like a wrong password.
func (s *Server) authenticate(r *http.Request) *account {
	if s.cfg.RequireHTTPS && r.TLS == nil {
		return nil
	}
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" {
		return nil
	}
	var domain, name string
	switch {
	case strings.Contains(user, "@"):
		return nil // UPNs are domain accounts in another spelling; Basic takes neither
	case strings.Contains(user, `\`):
		i := strings.IndexByte(user, '\\')
		domain, name = user[:i], user[i+1:]
	default:
		name = user
	}
	for i := range s.accounts {
		a := &s.accounts[i]
		if !strings.EqualFold(a.name, name) {
			continue
		}
		if domain == "" && a.domain != "" || domain != "" && (a.domain == "" || !strings.EqualFold(a.domain, domain) || s.cfg.BasicLocalOnly) {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(a.password), []byte(pass)) == 1 {
			return a
		}
	}
	return nil
}

// handle validates the headers common to every operation and dispatches.
func (s *Server) handle(r *http.Request, acct *account, req *request) ([]byte, *fault) {
	if req.MustUnderstand != "" {
		return nil, faultMustUnderstand(req.MustUnderstand)
	}
	if !req.HasAction || req.Action == "" {
		return nil, faultHeaderRequired("Action")
	}
	if !req.HasMessageID || req.MessageID == "" {
		return nil, faultInvalidHeader("The WS-Management service cannot process the request. The MessageID header is missing or empty. ")
	}
	if !req.HasResourceURI {
		return nil, faultHeaderRequired("ResourceURI")
	}
	if req.ResourceURI == "" {
		return nil, faultInvalidResourceURI()
	}
	timeout := s.cfg.MaxTimeout
	if req.HasTimeout {
		d, err := parseDuration(req.OperationTimeout)
		if err != nil {
			return nil, faultInvalidTimeout(req.OperationTimeout)
		}
		if d < timeout {
			timeout = d
		}
	}
	maxEnv := s.cfg.MaxEnvelopeSize
	if req.HasMaxEnvelope {
		n, err := strconv.Atoi(req.MaxEnvelopeSize)
		if err != nil || n < 0 {
			return nil, faultInvalidHeader("The WS-Management service cannot process the request. The MaxEnvelopeSize header is not a number: " + req.MaxEnvelopeSize + ". ")
		}
		if n < minEnvelopeSize {
			return nil, faultMinEnvelope()
		}
		if n < maxEnv {
			maxEnv = n
		}
	}
	if !strings.EqualFold(req.ResourceURI, resourceCmd) {
		return nil, faultResourceNotFound()
	}
	if req.Action == actionCreate {
		return s.create(r, acct, req)
	}
	switch req.Action {
	case actionDelete, actionCommand, actionReceive, actionSend, actionSignal:
	default:
		return nil, faultActionNotSupported()
	}
	sh, f := s.lookupShell(acct, req)
	if f != nil {
		return nil, f
	}
	defer s.release(sh)
	switch req.Action {
	case actionDelete:
		return s.deleteShell(sh, req)
	case actionCommand:
		return s.command(sh, req)
	case actionReceive:
		return s.receive(r.Context(), sh, req, timeout, maxEnv)
	case actionSend:
		return s.send(sh, req)
	default:
		return s.signal(sh, req)
	}
}

// lookupShell finds the shell named by the ShellId selector and marks a
// request in progress on it (release ends it).
func (s *Server) lookupShell(acct *account, req *request) (*shell, *fault) {
	id, ok := req.Selectors["shellid"]
	if !ok {
		if req.HasSelectors && len(req.Selectors) > 0 {
			return nil, faultUnexpectedSelectors()
		}
		return nil, faultNoShellSelector()
	}
	if len(req.Selectors) > 1 || req.DupSelector != "" {
		return nil, faultUnexpectedSelectors()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shells[strings.ToUpper(id)]
	// Shells belong to the user who created them; others cannot see them.
	if sh == nil || sh.gone || sh.acct != acct {
		return nil, faultShellNotFound(id)
	}
	sh.active++
	sh.idle.Stop()
	return sh, nil
}

// release ends a request on a shell and restarts its idle timer.
func (s *Server) release(sh *shell) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh.active--
	if sh.active == 0 && !sh.gone {
		sh.idle.Reset(sh.idleFor)
	}
}

func (s *Server) create(r *http.Request, acct *account, req *request) ([]byte, *fault) {
	if req.Body == nil || req.BodyCount != 1 || req.Body.Name != (xml.Name{Space: nsShell, Local: "Shell"}) {
		return nil, faultInvalidRepresentation()
	}
	in, out := "stdin", "stdout stderr"
	if e := req.Body.child(nsShell, "InputStreams"); e != nil {
		in = strings.Join(strings.Fields(e.Text), " ")
	}
	if e := req.Body.child(nsShell, "OutputStreams"); e != nil {
		out = strings.Join(strings.Fields(e.Text), " ")
	}
	idleFor, f := s.requestedIdleTimeout(req.Body)
	if f != nil {
		return nil, f
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, internalErrorNotSupported()
	}
	key := strings.ToLower(acct.key)
	if s.perUser[key] >= s.cfg.MaxShellsPerUser {
		s.mu.Unlock()
		return nil, faultQuotaShells(s.cfg.MaxShellsPerUser)
	}
	sh := &shell{
		id:       newGUID(),
		acct:     acct,
		clientIP: hostOnly(r.RemoteAddr),
		commands: map[string]*command{},
		idleFor:  idleFor,
	}
	sh.idle = time.AfterFunc(idleFor, func() { s.expire(sh) })
	s.shells[sh.id] = sh
	s.perUser[key]++
	s.mu.Unlock()

	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	body := "<x:ResourceCreated><a:Address>" + esc(scheme+"://"+r.Host+"/wsman") + "</a:Address><a:ReferenceParameters>" +
		"<w:ResourceURI>" + resourceCmd + "</w:ResourceURI><w:SelectorSet><w:Selector Name=\"ShellId\">" + sh.id +
		"</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>" +
		`<rsp:Shell xmlns:rsp="` + nsShell + `"><rsp:ShellId>` + sh.id + "</rsp:ShellId><rsp:ResourceUri>" + resourceCmd +
		"</rsp:ResourceUri><rsp:Owner>" + esc(acct.key) + "</rsp:Owner><rsp:ClientIP>" + esc(sh.clientIP) +
		"</rsp:ClientIP><rsp:IdleTimeOut>" + formatSeconds(idleFor) + "</rsp:IdleTimeOut><rsp:InputStreams>" + esc(in) +
		"</rsp:InputStreams><rsp:OutputStreams>" + esc(out) + "</rsp:OutputStreams><rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime>" +
		"<rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity></rsp:Shell>"
	return envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse", req.MessageID, body), nil
}

// requestedIdleTimeout is the idle timeout of a shell a Create asks for:
// the server's IdleTimeout when the body has no rsp:IdleTimeOut, else the
// requested xs:duration raised to the minimum and lowered to the server's
// IdleTimeout (MS-WSMV 2.2.4.37, 2.2.4.42; WSMAN_SHELL_STARTUP_INFO). Windows
// does not hold the element to its schema position (a capture has it after
// the streams), but its value must be one xs:duration: pywinrm's bare
// milliseconds are refused (pywinrm issue #377).
func (s *Server) requestedIdleTimeout(body *element) (time.Duration, *fault) {
	els := body.children(nsShell, "IdleTimeOut")
	if len(els) == 0 {
		return s.cfg.ShellIdleTimeout, nil
	}
	if len(els) > 1 || len(els[0].Children) > 0 {
		return 0, faultSchemaValidation("IdleTimeOut")
	}
	d, err := parseDurationOrZero(strings.TrimSpace(els[0].Text))
	if err != nil {
		return 0, faultSchemaValidation("IdleTimeOut")
	}
	// Windows keeps the timeout in milliseconds (a DWORD).
	d = max(d.Truncate(time.Millisecond), s.cfg.MinShellIdleTimeout)
	return min(d, s.cfg.ShellIdleTimeout), nil
}

func formatSeconds(d time.Duration) string {
	return fmt.Sprintf("PT%.3fS", d.Seconds())
}

// expire deletes a shell whose idle timer fired.
func (s *Server) expire(sh *shell) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sh.gone || sh.active > 0 {
		return
	}
	s.log.Info("wsman shell idle timeout", "shell", sh.id, "user", sh.acct.key)
	s.dropShellLocked(sh)
}

// dropShellLocked removes a shell and cancels its commands. s.mu is held.
func (s *Server) dropShellLocked(sh *shell) {
	if sh.gone {
		return
	}
	sh.gone = true
	sh.idle.Stop()
	delete(s.shells, sh.id)
	key := strings.ToLower(sh.acct.key)
	if s.perUser[key]--; s.perUser[key] <= 0 {
		delete(s.perUser, key)
	}
	for _, c := range sh.commands {
		c.remove(true)
	}
	sh.commands = nil
}

func (s *Server) deleteShell(sh *shell, req *request) ([]byte, *fault) {
	s.mu.Lock()
	var running []*command
	for _, c := range sh.commands {
		running = append(running, c)
	}
	s.dropShellLocked(sh)
	s.mu.Unlock()
	// Windows answers a Delete once the shell is torn down, its processes
	// ended: a client's next command never overlaps one of the deleted
	// shell's. Bounded, as the processes are killed, not waited for.
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DeleteWait)
	defer cancel()
	for _, c := range running {
		select {
		case <-c.finished:
		case <-ctx.Done():
			s.log.Warn("wsman delete: a command of the shell did not end", "shell", sh.id, "command", c.id)
		}
	}
	return envelope("http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse", req.MessageID, ""), nil
}
