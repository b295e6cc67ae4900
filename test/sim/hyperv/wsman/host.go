package wsman

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// HostConfig configures the listeners of one emulated host.
type HostConfig struct {
	Server Config
	// HTTPAddr is the HTTP listener address ("127.0.0.1:0" picks a free port
	// on the first Start and keeps it across restarts); empty means none.
	HTTPAddr string
	// HTTPSAddr is the HTTPS listener address; it needs TLS.
	HTTPSAddr string
	TLS       *tls.Config
}

// Host is an emulated host's WinRM service with its listeners. Stop is a
// crash: connections are refused, open connections cut, shells dropped and
// running commands cancelled. Start brings the service back on the same
// addresses with no shells, like a rebooted host.
type Host struct {
	mu      sync.Mutex
	cfg     HostConfig
	addrs   [2]string // resolved HTTP and HTTPS addresses
	srv     *Server
	servers []*http.Server
	// lns are closed by Stop too: http.Server.Close closes only the
	// listeners its Serve goroutine has registered, so right after Start a
	// crash could otherwise leave a port accepting.
	lns     []net.Listener
	running bool
}

// NewHost validates cfg; the host starts stopped.
func NewHost(cfg HostConfig) (*Host, error) {
	if cfg.HTTPAddr == "" && cfg.HTTPSAddr == "" {
		return nil, errors.New("wsman: HostConfig has neither HTTPAddr nor HTTPSAddr")
	}
	if cfg.HTTPSAddr != "" && cfg.TLS == nil {
		return nil, errors.New("wsman: HostConfig.HTTPSAddr is set but TLS is nil")
	}
	if _, err := NewServer(cfg.Server); err != nil {
		return nil, err
	}
	return &Host{cfg: cfg, addrs: [2]string{cfg.HTTPAddr, cfg.HTTPSAddr}}, nil
}

// Start opens the listeners with a fresh server.
func (h *Host) Start() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running {
		return nil
	}
	srv, err := NewServer(h.cfg.Server)
	if err != nil {
		return err
	}
	var lns []net.Listener
	for i, addr := range h.addrs {
		if addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				_ = l.Close()
			}
			_ = srv.Close()
			return fmt.Errorf("wsman: start %s: listen on %s: %w", h.cfg.Server.Host, addr, err)
		}
		h.addrs[i] = ln.Addr().String()
		if i == 1 {
			ln = tls.NewListener(ln, h.cfg.TLS)
		}
		lns = append(lns, ln)
	}
	h.srv = srv
	h.servers, h.lns = nil, lns
	for _, ln := range lns {
		hs := &http.Server{Handler: srv, ReadHeaderTimeout: 30 * time.Second,
			// TLS handshake failures from clients that distrust the lab CA
			// are expected; they go to the diagnostics logger.
			ErrorLog: slog.NewLogLogger(srv.log.Handler(), slog.LevelDebug)}
		h.servers = append(h.servers, hs)
		go func() { _ = hs.Serve(ln) }()
	}
	h.running = true
	return nil
}

// Stop crashes the service (see Host). It reports commands that ignored
// their cancellation.
func (h *Host) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		return nil
	}
	h.running = false
	var errs []error
	for _, hs := range h.servers {
		errs = append(errs, hs.Close())
	}
	for _, ln := range h.lns {
		if err := ln.Close(); !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	h.servers, h.lns = nil, nil
	errs = append(errs, h.srv.Close())
	h.srv = nil
	return errors.Join(errs...)
}

// Running reports whether the service is up.
func (h *Host) Running() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.running
}

// Server returns the running server, or nil when stopped.
func (h *Host) Server() *Server {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.srv
}

// HTTPAddr and HTTPSAddr return the listener addresses (resolved after the
// first Start); empty when not configured.
func (h *Host) HTTPAddr() string  { h.mu.Lock(); defer h.mu.Unlock(); return h.addrs[0] }
func (h *Host) HTTPSAddr() string { h.mu.Lock(); defer h.mu.Unlock(); return h.addrs[1] }

// HTTPURL and HTTPSURL return the endpoint URLs clients use.
func (h *Host) HTTPURL() string  { return endpointURL("http", h.HTTPAddr()) }
func (h *Host) HTTPSURL() string { return endpointURL("https", h.HTTPSAddr()) }

func endpointURL(scheme, addr string) string {
	if addr == "" {
		return ""
	}
	return scheme + "://" + addr + "/wsman"
}
