// Package service assembles hvro serve from a configuration: the store, the
// ECX pollers, the WinRM drivers, the orchestrator, metrics and the HTTP
// API. hvlab's demo runs it in-process. The one thing to know: Shutdown
// drains (running steps finish and are journaled) before the store closes.
package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hvro/hvro/clusterapi"
	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/orchestrator/httpapi"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/replica"
	"github.com/hvro/hvro/store"
)

// HostFactory builds the driver of one Hyper-V host. names knows the
// names of every host: what Hyper-V replicates to (Peer) and which host a
// name Hyper-V reports stands for (Key).
type HostFactory func(h config.Host, names HostNames, m *metrics.Metrics, log *slog.Logger) (orchestrator.Host, error)

// Options are what the caller adds to the configuration.
type Options struct {
	Logger  *slog.Logger
	Version string
	// Hosts builds drivers; the default is the WinRM driver (package replica).
	Hosts HostFactory
}

// Service is a running hvro.
type Service struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics.Metrics
	store   *store.Store
	// backupSlot admits one GET /v1/backup at a time, across reloads.
	backupSlot chan struct{}

	mu      sync.Mutex
	cfg     *config.Config
	ctrl    *orchestrator.Controller
	drivers map[string]orchestrator.Host // by host key
	// retired are the drivers reloads replaced. A step that started before
	// a reload may still hold one (the controller keeps a step's host
	// across its retries), and a closed driver fails every command, so they
	// are closed only in Shutdown, after the controller stopped. Their
	// idle connections time out on their own meanwhile.
	retired []orchestrator.Host
	// names knows every host's names for every driver: a driver kept
	// across a reload learns the new hosts' names.
	names   *hostNames
	load    func() (*config.Config, error)
	pollers context.CancelFunc
	pollWG  sync.WaitGroup

	// reloadMu serializes reloads (SIGHUP and the API may ask at once) and
	// guards the pollers they restart.
	reloadMu sync.Mutex
	handler  atomic.Pointer[http.Handler]
	server   *http.Server
	ln       net.Listener
	ready    atomic.Bool
}

// New opens the store (exclusively) and builds everything; nothing runs yet.
func New(cfg *config.Config, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Hosts == nil {
		opts.Hosts = winrmHost
	}
	s := &Service{opts: opts, log: opts.Logger, metrics: metrics.New(opts.Version), cfg: cfg, backupSlot: make(chan struct{}, 1)}
	s.logWarnings(cfg)
	st, err := store.Open(filepath.Join(cfg.DataDir, "hvro.db"), store.Options{Logger: opts.Logger.With("component", "store")})
	if err != nil {
		return nil, fmt.Errorf("open the store: %w", err)
	}
	s.store = st
	s.names = newHostNames(cfg, s.metrics, opts.Logger.With("component", "winrm"))
	s.names.learners = s.identityLearners
	drivers, _, err := s.buildDrivers(cfg, nil)
	if err != nil {
		closeHosts(context.Background(), slices.Collect(maps.Values(drivers)), s.log)
		st.Close()
		return nil, err
	}
	s.drivers = drivers
	ctrl, err := orchestrator.New(s.controllerConfig(cfg))
	if err != nil {
		closeHosts(context.Background(), slices.Collect(maps.Values(drivers)), s.log)
		st.Close()
		return nil, fmt.Errorf("orchestrator: %w", err)
	}
	s.ctrl = ctrl
	s.setHandler(cfg)
	return s, nil
}

func (s *Service) controllerConfig(cfg *config.Config) orchestrator.Config {
	return orchestrator.Config{
		Store:          s.store,
		Hosts:          s.host,
		Clusters:       clustersOf(cfg),
		Pairs:          pairsOf(cfg),
		Transient:      isTransient,
		Permanent:      permanentReason,
		Abandoned:      isAbandoned,
		Workers:        cfg.Workers,
		StepTimeout:    cfg.WinRM.Timeout + 5*time.Second,
		CommandTimeout: cfg.WinRM.Timeout,
		// The same value the drivers ask every host for: an orphaned
		// command ends with its idle shell.
		ShellIdleTimeout: cfg.WinRM.ShellIdleTimeout,
		StepRetries:      retriesFor(cfg.Retry.MaxAttempts - 1), // retries after the first attempt
		RetryBase:        cfg.Retry.InitialBackoff,
		BackoffMax:       cfg.Retry.MaxBackoff,
		ResyncInterval:   cfg.ResyncInterval,
		Logger:           s.log.With("component", "orchestrator"),
		Metrics:          s.metrics,
		ReloadPause:      failpoint("HVRO_FAILPOINT_RELOAD_PAUSE"),
	}
}

// failpoint reads a test-only delay from the environment (e2e tests widen
// race windows with it through the real binary); unset or invalid is 0.
func failpoint(name string) time.Duration {
	d, err := time.ParseDuration(os.Getenv(name))
	if err != nil || d < 0 {
		return 0
	}
	return d
}

func (s *Service) host(name string) (orchestrator.Host, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.drivers[name]
	return h, ok
}

// hostKey names a host the way the orchestrator does: the ECX server name,
// which is also the short name Hyper-V reports (the configuration keeps
// server names unique across clusters).
func hostKey(server string) string { return strings.ToLower(server) }

// identityLearners are the current drivers that can read their host's
// identity, by host key.
func (s *Service) identityLearners() map[string]func(context.Context) (replica.Identity, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]func(context.Context) (replica.Identity, error){}
	for k, d := range s.drivers {
		if l, ok := d.(interface {
			Identity(context.Context) (replica.Identity, error)
		}); ok {
			out[k] = l.Identity
		}
	}
	return out
}

// buildDrivers makes a driver for every host of cfg. A host for which
// reuse returns a driver keeps it; the others get a new one, listed in
// fresh too. With an error, all holds the drivers that could be had, and
// fresh is what to close.
func (s *Service) buildDrivers(cfg *config.Config, reuse func(key string) (orchestrator.Host, bool)) (all, fresh map[string]orchestrator.Host, err error) {
	all, fresh = map[string]orchestrator.Host{}, map[string]orchestrator.Host{}
	var errs []error
	for _, c := range cfg.Clusters {
		for _, h := range cfg.Hosts(c.Name) {
			k := hostKey(h.Server)
			if reuse != nil {
				if d, ok := reuse(k); ok {
					all[k] = d
					continue
				}
			}
			d, err := s.opts.Hosts(h, s.names, s.metrics, s.log.With("component", "winrm", "host", h.Server))
			if err != nil {
				errs = append(errs, fmt.Errorf("clusters %s servers %s: %w", c.Name, h.Server, err))
				continue
			}
			all[k], fresh[k] = d, d
		}
	}
	return all, fresh, errors.Join(errs...)
}

func clustersOf(cfg *config.Config) orchestrator.Clusters {
	out := orchestrator.Clusters{}
	for _, c := range cfg.Clusters {
		spec := orchestrator.ClusterSpec{Servers: map[string]string{}}
		for name := range c.Servers {
			spec.Servers[strings.ToLower(name)] = hostKey(name)
		}
		out[c.Name] = spec
	}
	return out
}

func pairsOf(cfg *config.Config) []orchestrator.PairSpec {
	var out []orchestrator.PairSpec
	for _, p := range cfg.Pairs {
		side := func(s config.Side) orchestrator.Side {
			return orchestrator.Side{Cluster: s.Cluster, Group: s.Group, ConfigPath: s.VMConfigPath}
		}
		r := p.Replication
		out = append(out, orchestrator.PairSpec{
			Name: p.Name, VMName: p.VMName, InitialPrimary: p.Primary.Cluster,
			Sides: map[string]orchestrator.Side{p.Primary.Cluster: side(p.Primary), p.Replica.Cluster: side(p.Replica)},
			Replication: orchestrator.Settings{Port: r.Port, Auth: r.Authentication, Thumbprint: r.CertificateThumbprint,
				FrequencySec: int(r.Frequency / time.Second), Compression: r.Compression, UseBackup: r.Initial == config.InitialUseExisting},
		})
	}
	return out
}

func (s *Service) setHandler(cfg *config.Config) {
	hooks := map[string]string{}
	endpoints := map[string][]string{}
	for _, c := range cfg.Clusters {
		hooks[c.Name] = c.HookToken.Value()
		endpoints[c.Name] = c.API.Endpoints
	}
	h := httpapi.Handler(httpapi.Deps{
		Controller:    s.ctrl,
		Store:         s.store,
		AdminToken:    cfg.Auth.AdminToken.Value(),
		HookTokens:    hooks,
		MetricsPublic: cfg.Auth.MetricsPublic,
		Metrics:       s.metrics.Handler(),
		Clusters:      func() map[string][]string { return endpoints },
		Reload:        s.ReloadFromSource,
		Ready:         s.Ready,
		OnHook:        s.metrics.Hook,
		Logger:        s.log.With("component", "http"),
		Version:       s.opts.Version,
		Backup:        s.store.Backup,
		TempDir:       cfg.DataDir,
		BackupSlot:    s.backupSlot,
		HookMaxWait:   cfg.Hooks.MaxWait,
	})
	s.handler.Store(&h)
}

// Start runs the orchestrator, the pollers and the HTTP server.
func (s *Service) Start(ctx context.Context) error {
	s.mu.Lock()
	cfg := s.cfg
	s.mu.Unlock()
	// Snapshots a kill -9 left behind would fill the store's disk in time.
	if err := httpapi.RemoveSnapshots(cfg.DataDir); err != nil {
		s.log.Warn("remove leftover backup snapshots", "dir", cfg.DataDir, "error", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	if cfg.TLS.Enabled() {
		cert, err := tls.LoadX509KeyPair(cfg.TLS.CertFile, cfg.TLS.KeyFile)
		if err != nil {
			ln.Close()
			return fmt.Errorf("tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	s.ln = ln
	if err := s.ctrl.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	s.reloadMu.Lock()
	s.startPollers(cfg)
	s.reloadMu.Unlock()
	s.server = newHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*s.handler.Load()).ServeHTTP(w, r) }), s.log)
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server", "error", err)
		}
	}()
	s.ready.Store(true)
	s.log.Info("hvro is serving", "listen", ln.Addr().String(), "pairs", len(cfg.Pairs), "clusters", len(cfg.Clusters), "version", s.opts.Version)
	return nil
}

// Bounds of the HTTP server. Each connection costs memory until it ends,
// so none may last longer than its work: headers are small, a request is
// read in ReadTimeout, an answer written in httpapi.DefaultWriteTimeout
// (the API extends it for a hook's long poll and per chunk of a backup),
// and an idle keep-alive connection is closed after IdleTimeout.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	idleTimeout       = time.Minute
	maxHeaderBytes    = 64 << 10
)

func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		// The API sets each answer's deadline itself; this covers what
		// net/http writes on its own before a handler runs.
		WriteTimeout:   httpapi.DefaultWriteTimeout,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Ready reports whether the store is open and takes writes, the
// configuration loaded and the workers running. A store whose last commit
// failed (disk full, read-only) is not ready: hvro cannot journal a step,
// so it must not look healthy to a load balancer or an alert.
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("hvro is starting or stopping")
	}
	if err := s.store.Health(); err != nil {
		return err
	}
	return nil
}

func (s *Service) startPollers(cfg *config.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	s.pollers = cancel
	for _, c := range cfg.Clusters {
		c := c
		client, err := clusterapi.New(clusterapi.Config{
			Name: c.Name, Endpoints: c.API.Endpoints, Username: c.API.Username, Password: c.API.Password.Value(),
			CAFile: c.API.CAFile, InsecureSkipVerify: c.API.InsecureSkipVerify, Timeout: c.API.Timeout,
			Retries: retriesFor(c.API.Retries), Logger: s.log.With("component", "ecx"),
			OnRequest: func(endpoint, outcome string, d time.Duration) { s.metrics.ECX(c.Name, endpoint, outcome) },
		})
		if err != nil {
			s.log.Error("ecx client", "cluster", c.Name, "error", err)
			continue
		}
		observe := func(k orchestrator.GroupKey, o orchestrator.Observation) {
			owner := ""
			if o.Err == "" && o.Status == "Online" {
				owner = o.Owner
			}
			s.metrics.GroupOwner(k.Cluster, k.Group, owner)
			s.ctrl.Observe(k, o)
		}
		s.pollWG.Add(1)
		go func() {
			defer s.pollWG.Done()
			orchestrator.Poll(ctx, c.Name, client, func() []string { return s.ctrl.GroupsOf(c.Name) }, c.PollInterval,
				client.MaxCallDuration(), observe, s.log.With("component", "poller"))
		}()
	}
}

// retriesFor maps the config's "0 = no retries" to the "-1 = none" of
// clusterapi and the orchestrator, where 0 means their default.
func retriesFor(n int) int {
	if n <= 0 {
		return -1
	}
	return n
}

// Shutdown drains and closes: no new HTTP requests, pollers stop, running
// steps finish and are journaled, then the store closes.
func (s *Service) Shutdown(ctx context.Context) error {
	s.ready.Store(false)
	var errs []error
	// The controller stops first: no step starts any more and waiting hooks
	// are answered, so the HTTP server has no request left to wait for.
	done := make(chan struct{})
	go func() { s.ctrl.Stop(); close(done) }()
	if s.server != nil {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := s.server.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
		cancel()
	}
	s.reloadMu.Lock()
	if s.pollers != nil {
		s.pollers()
		s.pollWG.Wait()
		s.pollers = nil
	}
	s.reloadMu.Unlock()
	select {
	case <-done:
		// No step runs any more: the drivers, current and retired, may go.
		s.reloadMu.Lock()
		s.mu.Lock()
		hosts := append(slices.Collect(maps.Values(s.drivers)), s.retired...)
		s.drivers, s.retired = nil, nil
		s.mu.Unlock()
		s.reloadMu.Unlock()
		closeHosts(ctx, hosts, s.log)
	case <-ctx.Done():
		// Steps still hold drivers, and a closed driver fails their
		// commands: leave them open; the process exits anyway.
		errs = append(errs, fmt.Errorf("running steps did not finish in time: %w", ctx.Err()))
	}
	if s.server != nil {
		s.server.Close()
	}
	if err := s.store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close the store: %w", err))
	}
	return errors.Join(errs...)
}

// errNoReloadSource: ReloadFromSource before ReloadSource set where a
// fresh configuration comes from (hvlab's demo has no file).
var errNoReloadSource = errors.New("no configuration file to reload from")

// ReloadSource sets the function that reads a fresh configuration.
func (s *Service) ReloadSource(load func() (*config.Config, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.load = load
}

// ReloadFromSource reads a fresh configuration from the source ReloadSource
// set and applies it (SIGHUP, the Windows service's paramchange and POST
// /v1/config/reload).
func (s *Service) ReloadFromSource(ctx context.Context) error {
	s.mu.Lock()
	load := s.load
	s.mu.Unlock()
	if load == nil {
		return errNoReloadSource
	}
	cfg, err := load()
	if err != nil {
		return err
	}
	if err := s.Reload(cfg); err != nil {
		return err
	}
	s.logWarnings(cfg)
	return nil
}

// logWarnings repeats at every start and reload what check-config warns
// about, so an unsafe setting stays visible in the log.
func (s *Service) logWarnings(cfg *config.Config) {
	for _, w := range cfg.Warnings {
		s.log.Warn("configuration warning", "key", w.Path, "line", w.Line, "warning", w.Msg)
	}
}

// Reload applies a new configuration's pairs, clusters, servers and tokens
// without a restart. Settings that need a restart (listen, tls, data_dir)
// make it refuse the whole configuration, keeping the old one.
func (s *Service) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	s.mu.Lock()
	old := s.cfg
	s.mu.Unlock()
	var fixed []string
	if cfg.Listen != old.Listen {
		fixed = append(fixed, "listen")
	}
	if cfg.TLS != old.TLS {
		fixed = append(fixed, "tls")
	}
	if cfg.DataDir != old.DataDir {
		fixed = append(fixed, "data_dir")
	}
	if len(fixed) > 0 {
		return fmt.Errorf("%s changed: restart hvro to apply; nothing was reloaded", strings.Join(fixed, ", "))
	}
	s.mu.Lock()
	oldDrivers := s.drivers
	s.mu.Unlock()
	// Hosts whose settings did not change keep their driver.
	drivers, fresh, err := s.buildDrivers(cfg, func(k string) (orchestrator.Host, bool) {
		d, ok := oldDrivers[k]
		return d, ok && sameHostConfig(old, cfg, k)
	})
	if err != nil {
		closeHosts(context.Background(), slices.Collect(maps.Values(fresh)), s.log) // built, never used
		return err
	}
	// All or nothing: until SetPairs, which validates against the store and
	// can fail, has taken the new pairs, the old pairs see the old drivers.
	// Hosts only the new configuration has are added right away, so a pair
	// that SetPairs queues finds them at once.
	stagedDrivers := maps.Clone(oldDrivers)
	for k, d := range drivers {
		if _, ok := stagedDrivers[k]; !ok {
			stagedDrivers[k] = d
		}
	}
	s.mu.Lock()
	s.drivers = stagedDrivers
	s.mu.Unlock()
	s.names.configure(old, cfg) // old names win until SetPairs took the new pairs
	if err := s.ctrl.SetPairs(pairsOf(cfg), clustersOf(cfg)); err != nil {
		// The controller kept its old pairs and clusters, which name old
		// hosts only: no pass was handed a new driver.
		s.mu.Lock()
		s.drivers = oldDrivers
		s.mu.Unlock()
		s.names.configure(old)
		closeHosts(context.Background(), slices.Collect(maps.Values(fresh)), s.log)
		return fmt.Errorf("apply pairs: %w; nothing was reloaded", err)
	}
	// Workers, retries, resync and the step deadline (which follows
	// winrm.timeout) apply from the next pass and step on.
	s.ctrl.SetTunables(s.controllerConfig(cfg).Tunables())
	s.mu.Lock()
	for k, d := range oldDrivers {
		_, still := drivers[k]
		if _, replaced := fresh[k]; replaced || !still {
			s.retired = append(s.retired, d) // removed, or its settings changed
		}
	}
	s.drivers, s.cfg = drivers, cfg
	s.mu.Unlock()
	s.names.configure(cfg)
	if s.pollers != nil {
		s.pollers()
		s.pollWG.Wait()
		s.startPollers(cfg)
	}
	s.setHandler(cfg)
	s.log.Info("configuration reloaded", "pairs", len(cfg.Pairs), "clusters", len(cfg.Clusters))
	return nil
}

func sameHostConfig(a, b *config.Config, key string) bool {
	find := func(c *config.Config) (config.Host, bool) {
		for _, cl := range c.Clusters {
			for _, h := range c.Hosts(cl.Name) {
				if hostKey(h.Server) == key {
					return h, true
				}
			}
		}
		return config.Host{}, false
	}
	ha, oka := find(a)
	hb, okb := find(b)
	return oka && okb && ha.URL == hb.URL && reflect.DeepEqual(hostSettings(ha), hostSettings(hb))
}

func hostSettings(h config.Host) []any {
	w := h.WinRM
	return []any{w.Username, w.Password.Value(), w.Auth, w.HTTPS, w.InsecureSkipVerify, w.CAFile, w.Timeout, w.MaxConcurrentPerHost, w.ShellIdleTimeout}
}

// closeHosts closes the drivers that can be closed (the WinRM driver
// waits a few seconds for shells of cancelled commands to be deleted), all
// at once, until ctx ends.
func closeHosts(ctx context.Context, hosts []orchestrator.Host, log *slog.Logger) {
	var wg sync.WaitGroup
	for _, h := range hosts {
		c, ok := h.(interface{ Close() error })
		if !ok {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Close(); err != nil {
				log.Warn("close a WinRM driver", "error", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
