package replica

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
)

// Defaults of Config.
const (
	DefaultTimeout       = 60 * time.Second
	DefaultMaxConcurrent = 4
	// MaxShells is Windows' default MaxShellsPerUser and the highest
	// Config.MaxConcurrent: every command holds one shell, so more
	// concurrent commands than this only earn quota faults.
	MaxShells = 30
	// DefaultShellIdleTimeout is the idle timeout the driver asks each
	// shell's host for: Windows' least (a shorter request is raised to
	// it), well above the driver's longest gap between two requests of a
	// running command.
	DefaultShellIdleTimeout = 60 * time.Second
	// MinShellIdleTimeout and MaxShellIdleTimeout bound
	// Config.ShellIdleTimeout. Below 2s the driver's one-second long-polls
	// would not stay within half of it; above 2h Windows (winrs
	// IdleTimeout, default 7200000 ms) shortens the request anyway.
	MinShellIdleTimeout = 2 * time.Second
	MaxShellIdleTimeout = 2 * time.Hour
	// WindowsMinShellIdleTimeout is the least idle timeout Windows grants
	// (MS-WSMV 2.2.4.42): a host raises a shorter request to it. Shorter
	// values are for emulated labs.
	WindowsMinShellIdleTimeout = 60 * time.Second
)

// Config is how the driver reaches one Hyper-V host.
type Config struct {
	// Endpoint is the WinRM URL: "http://node1.corp:5985/wsman" or
	// "https://node1.corp:5986/wsman" (HTTPS is the production transport).
	Endpoint string
	// Username and Password authenticate every request. The password is
	// never logged nor put in an error.
	Username, Password string
	// Auth is "basic" (default) or "ntlm". "kerberos" is refused: the WinRM
	// library's Kerberos transport needs krb5 settings hvro does not have.
	Auth string
	// InsecureSkipVerify turns off certificate checks (labs only).
	InsecureSkipVerify bool
	// CAFile is a PEM bundle that verifies the host's certificate (https;
	// ignored for http endpoints). Empty: the system's roots.
	CAFile string
	// Timeout bounds one command from its first request to its result
	// (default 60s).
	Timeout time.Duration
	// MaxConcurrent bounds the commands in flight on this host (default 4).
	MaxConcurrent int
	// ShellIdleTimeout is the idle timeout the driver asks the host for in
	// every shell it creates (rsp:IdleTimeOut; default
	// DefaultShellIdleTimeout, MinShellIdleTimeout to
	// MaxShellIdleTimeout). The host deletes a shell that gets no request
	// for that long, cancelling its command: a driver that dies mid-command
	// (kill -9) leaves nothing running past it. A live driver polls at
	// most half as long, so its shells never idle out.
	ShellIdleTimeout time.Duration
	// Logger receives debug lines per command; nil discards.
	Logger *slog.Logger
	// OnRequest is called once per command with its outcome: "ok",
	// "transient", "permanent" or "unknown" (for
	// hvro_winrm_requests_total{host,outcome}).
	OnRequest func(host string, outcome string, d time.Duration)
	// OnAbandoned is called when a command's caller stopped waiting (its
	// deadline or cancel) while the command's goroutine was still running
	// (for hvro_winrm_abandoned_total{host}). The goroutine finishes on
	// its own (its requests are aborted, its shell deleted) or, if the
	// WinRM library is stuck, is left behind; either way the host's slot
	// is free again at once.
	OnAbandoned func(host string)
}

// Driver runs PowerShell on one Hyper-V host. It is safe for concurrent
// use; at most Config.MaxConcurrent commands run on the host at once.
type Driver struct {
	host      string
	url       string
	endpoint  *winrm.Endpoint // for masterzen's envelopes (a:To)
	user      string
	password  string
	http      *http.Client
	transport *http.Transport
	timeout   time.Duration
	opTimeout time.Duration // WS-Man OperationTimeout, below the header timeout
	shellIdle time.Duration // rsp:IdleTimeOut asked for in every Create
	// sem bounds the commands callers wait for (MaxConcurrent); a caller
	// gives its slot back when it stops waiting. shells bounds the
	// commands whose goroutine still runs, abandoned ones included
	// (MaxShells), so neither the host's shell quota nor hvro's memory
	// can be exhausted by commands nobody waits for any more.
	sem       chan struct{}
	shells    chan struct{}
	abandoned atomic.Int64 // goroutines still running after their caller left
	// ending maps a VM name to a channel closed when the last command on
	// it that was abandoned has ended on the host (its shell deleted): the
	// next command on that VM waits for it, or two would change the VM at
	// once (I3).
	ending sync.Map
	// beforeDelete, when set (tests), runs before a shell is deleted.
	beforeDelete func()
	log          *slog.Logger
	onRequest    func(string, string, time.Duration)
	onAbandoned  func(string)

	idLock   chan struct{} // one identity command at a time; guards the next three
	identity *Identity     // learned once
	idErr    error         // the last failure, answered again until idFailed+identityRetry
	idFailed time.Time

	bgMu   sync.RWMutex   // orders bg.Add before Close's bg.Wait
	bg     sync.WaitGroup // commands (and their shell clean-ups) still running
	closed chan struct{}
}

// New checks cfg and returns a driver for host, the short ECX server name
// ("node1") used in errors and metrics. No network I/O happens here.
func New(host string, cfg Config) (*Driver, error) {
	if host == "" {
		return nil, errors.New("replica: host name is empty")
	}
	u, ep, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("replica: host %s: winrm endpoint: %w", host, err)
	}
	if cfg.Username == "" {
		return nil, fmt.Errorf("replica: host %s: winrm username is empty", host)
	}
	timeout := cfg.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		return nil, fmt.Errorf("replica: host %s: winrm timeout %s: must be positive", host, timeout)
	}
	idle := cfg.ShellIdleTimeout.Round(time.Millisecond) // Windows keeps milliseconds
	switch {
	case idle == 0:
		idle = DefaultShellIdleTimeout
	case idle < MinShellIdleTimeout || idle > MaxShellIdleTimeout:
		return nil, fmt.Errorf("replica: host %s: winrm shell idle timeout %s: must be between %s and %s", host, cfg.ShellIdleTimeout, MinShellIdleTimeout, MaxShellIdleTimeout)
	}
	maxc := cfg.MaxConcurrent
	switch {
	case maxc == 0:
		maxc = DefaultMaxConcurrent
	case maxc < 0 || maxc > MaxShells:
		return nil, fmt.Errorf("replica: host %s: winrm max_concurrent_per_host %d: must be between 1 and %d (Windows allows %d shells per user)", host, maxc, MaxShells, MaxShells)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("host", host)

	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" && u.Scheme == "https" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("replica: host %s: winrm ca_file: %w", host, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("replica: host %s: winrm ca_file %s: no PEM certificate in it", host, cfg.CAFile)
		}
		tlsCfg.RootCAs = pool
	}
	// The WS-Man OperationTimeout makes the host answer a waiting Receive
	// with a TimedOut fault; the HTTP header timeout must stay above it or
	// a healthy long-running command would look like a dead host. It also
	// stays within half the shell idle timeout: MS-WSMV counts idleness
	// from each request's arrival, so a long-poll longer than the idle
	// timeout could lose a live command's shell.
	op := min(timeout, 20*time.Second, idle/2)
	op = max(op, time.Second)
	base := &http.Transport{
		Proxy:                 nil, // WinRM goes straight to the host: a proxy would see Basic credentials and break NTLM
		DialContext:           (&net.Dialer{Timeout: min(timeout, 30*time.Second), KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(timeout, 15*time.Second),
		ResponseHeaderTimeout: op + 10*time.Second,
		MaxIdleConnsPerHost:   maxc,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     false,
	}
	var rt http.RoundTripper = base
	switch strings.ToLower(cfg.Auth) {
	case "", "basic":
		if u.Scheme == "http" {
			log.Debug("winrm basic authentication over plain http: use https in production")
		}
	case "ntlm":
		// go-ntlmssp turns the request's Basic credentials into an NTLM
		// handshake. The library version has no message encryption, so the
		// host must accept it over https (or AllowUnencrypted=true).
		rt = ntlmssp.Negotiator{RoundTripper: base}
	case "kerberos":
		return nil, fmt.Errorf(`replica: host %s: winrm auth "kerberos" is not supported: masterzen/winrm at the pinned version needs a krb5.conf, realm and SPN per host and has no message encryption; use "ntlm" or "basic" over https`, host)
	default:
		return nil, fmt.Errorf(`replica: host %s: winrm auth %q: must be "basic" or "ntlm"`, host, cfg.Auth)
	}
	d := &Driver{
		host:        host,
		url:         u.String(),
		endpoint:    ep,
		user:        cfg.Username,
		password:    cfg.Password,
		http:        &http.Client{Transport: rt, CheckRedirect: noRedirects},
		transport:   base,
		timeout:     timeout,
		opTimeout:   op,
		shellIdle:   idle,
		sem:         make(chan struct{}, maxc),
		shells:      make(chan struct{}, MaxShells),
		log:         log,
		onRequest:   cfg.OnRequest,
		onAbandoned: cfg.OnAbandoned,
		idLock:      make(chan struct{}, 1),
		closed:      make(chan struct{}),
	}
	return d, nil
}

// noRedirects keeps credentials on the configured host: WinRM never redirects.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// parseEndpoint checks a WinRM URL and returns it with the masterzen
// endpoint that describes it.
func parseEndpoint(raw string) (*url.URL, *winrm.Endpoint, error) {
	if raw == "" {
		return nil, nil, errors.New("empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("%q is not a URL", raw)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, nil, fmt.Errorf("%q is not an http(s) URL", raw)
	}
	if u.User != nil {
		return nil, nil, fmt.Errorf("%s://...@%s: credentials belong in username and password_file, not in the URL", u.Scheme, u.Host)
	}
	if u.Hostname() == "" {
		return nil, nil, fmt.Errorf("%q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, nil, fmt.Errorf("%q: WinRM endpoints take no query or fragment", raw)
	}
	switch strings.ToLower(u.Path) {
	case "", "/", "/wsman":
		u.Path = "/wsman"
	default:
		return nil, nil, fmt.Errorf("%q: path must be /wsman", raw)
	}
	port := 5985
	if u.Scheme == "https" {
		port = 5986
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return nil, nil, fmt.Errorf("%q: port %q is not a TCP port", raw, p)
		}
		port = n
	} else {
		u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(port))
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return u, &winrm.Endpoint{Host: host, Port: port, HTTPS: u.Scheme == "https"}, nil
}

// Abandoned is how many commands' goroutines are still running although
// their callers stopped waiting.
func (d *Driver) Abandoned() int { return int(d.abandoned.Load()) }

// Host returns the host name the driver was made for.
func (d *Driver) Host() string { return d.host }

// Close waits (at most a few seconds) for shells of cancelled commands to
// be deleted and drops idle connections. The driver must not be used after.
func (d *Driver) Close() error {
	d.bgMu.Lock()
	select {
	case <-d.closed:
		d.bgMu.Unlock()
		return nil
	default:
		close(d.closed)
	}
	d.bgMu.Unlock()
	done := make(chan struct{})
	go func() { d.bg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-time.After(cleanupTimeout + time.Second):
		err = fmt.Errorf("replica: host %s: shells of cancelled commands still being deleted after %s", d.host, cleanupTimeout)
	}
	d.transport.CloseIdleConnections()
	return err
}
