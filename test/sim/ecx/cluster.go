package ecx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Status strings, exactly as the real API spells them (with spaces).
const (
	StatusOnline         = "Online"
	StatusOffline        = "Offline"
	StatusOnlinePending  = "Online Pending"
	StatusOfflinePending = "Offline Pending"
	StatusOnlineFailure  = "Online Failure"
	StatusOfflineFailure = "Offline Failure"
)

// CLP_EVENT and CLP_FACTOR values the emulator sets for script resources.
const (
	EventStart    = "START"
	EventFailover = "FAILOVER"

	FactorGroupStop     = "GROUPSTOP"
	FactorGroupMove     = "GROUPMOVE"
	FactorGroupFailover = "GROUPFAILOVER"
)

// Errors of the Go API (Move, StartGroup, ServerDown, ...); the RESTful API
// answers the same conditions with result codes (see API.md).
var (
	ErrNotFound = errors.New("not found")        // unknown group or server
	ErrRefused  = errors.New("refused")          // the cluster turned the request down before doing anything
	ErrFailed   = errors.New("operation failed") // the operation ran and the group ended in a failure state
	ErrClosed   = errors.New("cluster closed")
)

// Observer is told about transitions the rest of the lab must follow. Calls
// are synchronous and come from the goroutine running the transition; an
// Observer may call State but must not start operations of the same group.
//
// Order on a move: stop script on the old owner → DiskOffline(old) →
// DiskOnline(new) → start script on the new owner. On a crash: ServerDown
// first, then for each group it owned DiskOffline(crashed) → DiskOnline(target)
// → start script with CLP_EVENT=FAILOVER (no stop script). A crashed
// server's disks are released only after ServerDown returned, and no disk
// comes online on a rejoining server before ServerUp returned. State shows a
// disk on a server from before DiskOnline until after DiskOffline returned,
// so a reader of both State and the Observer's world never finds the disk
// used where the cluster says it is not.
type Observer interface {
	DiskOnline(cluster, group, disk, server string)
	DiskOffline(cluster, group, disk, server string)
	ServerDown(cluster, server string)
	ServerUp(cluster, server string)
}

type nopObserver struct{}

func (nopObserver) DiskOnline(string, string, string, string)  {}
func (nopObserver) DiskOffline(string, string, string, string) {}
func (nopObserver) ServerDown(string, string)                  {}
func (nopObserver) ServerUp(string, string)                    {}

// Cluster is one emulated ECX cluster. All methods are safe for concurrent use.
type Cluster struct {
	cfg    Config
	obs    Observer
	log    *slog.Logger
	ctx    context.Context // canceled by Close after the grace period: kills running scripts
	cancel context.CancelFunc
	ops    sync.WaitGroup // background operations and crash passes

	mu        sync.Mutex
	closed    bool
	closing   chan struct{} // closed when Close starts: releases hanging requests
	servers   []*server     // failover priority order
	groups    []*group
	faults    []*Fault
	endpoints map[string]*endpoint
	opSeq     int
	opLog     []*OpRecord
	runs      []ScriptRun
}

type server struct {
	name    string
	index   int // 0 = highest priority = HOME
	up      bool
	booting bool            // ServerUp is telling the Observer
	ctx     context.Context // canceled when the server crashes: its scripts die with it
	cancel  context.CancelFunc
	// crashSeen is closed once the Observer heard of the last crash; disk
	// releases from that server wait for it, so the lab always hears
	// ServerDown before the crashed server's disks leave.
	crashSeen chan struct{}
}

const (
	resDisk = iota
	resFIP
	resScript
)

type group struct {
	cfg     GroupConfig
	dir     string
	tempDir bool
	slot    chan struct{} // held by the group's running operation

	// guarded by Cluster.mu
	status string
	owner  string // "" = none (the API shows "None")
	res    [3]resource
}

type resource struct {
	name, typ, status, owner string
}

func (g *group) tryLock() bool {
	select {
	case g.slot <- struct{}{}:
		return true
	default:
		return false
	}
}

func (g *group) lock(ctx context.Context) error {
	select {
	case g.slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *group) unlock() { <-g.slot }

// refusal is a request turned down before anything happened. The RESTful API
// answers it with result.code (inside HTTP 200 unless status says otherwise).
type refusal struct {
	code   int
	status int // HTTP status for the RESTful API
	kind   error
	msg    string
}

func (r *refusal) Error() string        { return r.msg }
func (r *refusal) Is(target error) bool { return target == r.kind }

func refuse(code int, format string, args ...any) *refusal {
	return &refusal{code: code, status: 200, kind: ErrRefused, msg: fmt.Sprintf(format, args...)}
}

func notFound(what, name string) *refusal {
	return &refusal{code: CodeNotFound, status: 404, kind: ErrNotFound, msg: fmt.Sprintf("The specified %s %q does not exist.", what, name)}
}

var closedRefusal = &refusal{code: CodeInternal, status: 503, kind: ErrClosed, msg: "The cluster is shutting down."}

// New builds a cluster in its initial state: every server up, each group
// Online on its configured owner (no start script runs for that) or Offline.
func New(cfg Config, obs Observer, log *slog.Logger) (*Cluster, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("ecx cluster %q: %w", cfg.Name, err)
	}
	if cfg.Timing.Pending == 0 {
		cfg.Timing.Pending = defaultPending
	}
	if cfg.Timing.DiskSwitch == 0 {
		cfg.Timing.DiskSwitch = defaultDiskSwitch
	}
	if obs == nil {
		obs = nopObserver{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg:       cfg,
		obs:       obs,
		log:       log.With("cluster", cfg.Name),
		ctx:       ctx,
		cancel:    cancel,
		closing:   make(chan struct{}),
		endpoints: map[string]*endpoint{},
	}
	for i, name := range cfg.Servers {
		sctx, scancel := context.WithCancel(ctx)
		seen := make(chan struct{})
		close(seen)
		c.servers = append(c.servers, &server{name: name, index: i, up: true, ctx: sctx, cancel: scancel, crashSeen: seen})
	}
	for _, gc := range cfg.Groups {
		g := &group{cfg: gc, dir: gc.Scripts.Dir, slot: make(chan struct{}, 1)}
		if g.cfg.Scripts.Timeout == 0 {
			g.cfg.Scripts.Timeout = defaultScriptTimeout
		}
		if g.dir == "" {
			dir, err := os.MkdirTemp("", "ecx-"+cfg.Name+"-"+gc.Name+"-")
			if err != nil {
				c.removeTempDirs()
				cancel()
				return nil, fmt.Errorf("ecx cluster %q: script directory of group %s: %w", cfg.Name, gc.Name, err)
			}
			g.dir, g.tempDir = dir, true
		}
		g.res[resDisk] = resource{name: gc.Disk, typ: "sd"}
		g.res[resFIP] = resource{name: fipName(gc.Name), typ: "fip"}
		g.res[resScript] = resource{name: scriptName(gc.Name), typ: "script"}
		owner := ""
		if gc.Owner != "" {
			owner = c.server(gc.Owner).name
		}
		g.setAll(owner)
		c.groups = append(c.groups, g)
	}
	return c, nil
}

// setAll puts the group and its resources Online on owner, or Offline when owner is "".
func (g *group) setAll(owner string) {
	st := StatusOnline
	if owner == "" {
		st = StatusOffline
	}
	g.status, g.owner = st, owner
	for i := range g.res {
		g.res[i].status, g.res[i].owner = st, owner
	}
}

// Name is the cluster's name.
func (c *Cluster) Name() string { return c.cfg.Name }

// server finds a server by name, ignoring case like Windows host names. Caller holds mu or reads immutable fields only.
func (c *Cluster) server(name string) *server {
	for _, s := range c.servers {
		if strings.EqualFold(s.name, name) {
			return s
		}
	}
	return nil
}

func (c *Cluster) group(name string) *group {
	for _, g := range c.groups {
		if g.cfg.Name == name {
			return g
		}
	}
	return nil
}

// firstUp is the highest-priority server that is up and not excluded. Caller holds mu.
func (c *Cluster) firstUp(exclude func(*server) bool) *server {
	for _, s := range c.servers {
		if s.up && (exclude == nil || !exclude(s)) {
			return s
		}
	}
	return nil
}

func (c *Cluster) update(fn func()) {
	c.mu.Lock()
	fn()
	c.mu.Unlock()
}

// pause waits d, or less when the cluster is being torn down.
func (c *Cluster) pause(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-c.ctx.Done():
	}
}

type opKind string

const (
	opMove     opKind = "move"
	opStart    opKind = "start"
	opStop     opKind = "stop"
	opFailover opKind = "failover"
)

// OpRecord is one group operation in State: API or control request, or a failover after a crash.
type OpRecord struct {
	ID      int       `json:"id"`
	Kind    string    `json:"kind"` // move, start, stop, failover
	Group   string    `json:"group"`
	Target  string    `json:"target,omitempty"`
	From    string    `json:"from,omitempty"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended,omitzero"`
	Result  string    `json:"result,omitempty"` // "" while running, "ok" or "failed"
	Error   string    `json:"error,omitempty"`
}

const keepRecords = 100

// recordOp appends an operation record. Caller holds mu.
func (c *Cluster) recordOp(kind opKind, g *group, target, from string) *OpRecord {
	c.opSeq++
	rec := &OpRecord{ID: c.opSeq, Kind: string(kind), Group: g.cfg.Name, Target: target, From: from, Started: time.Now()}
	c.opLog = append(c.opLog, rec)
	if len(c.opLog) > keepRecords {
		c.opLog = c.opLog[len(c.opLog)-keepRecords:]
	}
	return rec
}

func (c *Cluster) finishOp(rec *OpRecord, err error) {
	c.update(func() {
		rec.Ended = time.Now()
		rec.Result = "ok"
		if err != nil {
			rec.Result, rec.Error = "failed", err.Error()
		}
	})
	if err != nil {
		c.log.Warn("group operation failed", "op", rec.Kind, "group", rec.Group, "target", rec.Target, "err", err)
	} else {
		c.log.Info("group operation done", "op", rec.Kind, "group", rec.Group, "target", rec.Target)
	}
}

type opHandle struct {
	done chan struct{}
	err  error
}

func (h *opHandle) wait(ctx context.Context) error {
	select {
	case <-h.done:
		return h.err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the operation to settle (it goes on): %w", ctx.Err())
	}
}

// submit checks an operation against the group's state, takes the group's
// slot, shows the first Pending status at once (so a GET right after the
// POST sees the transition, as on a real cluster) and runs the rest in the
// background.
func (c *Cluster) submit(kind opKind, groupName, target string) (*opHandle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, closedRefusal
	}
	g := c.group(groupName)
	if g == nil {
		return nil, notFound("group", groupName)
	}
	if !g.tryLock() {
		return nil, refuse(CodeBusy, "Group %s is busy: another operation is in progress.", g.cfg.Name)
	}
	locked := true
	defer func() {
		if locked {
			g.unlock()
		}
	}()
	resolveTarget := func(exclude string) (*server, error) {
		if target == "" {
			s := c.firstUp(func(s *server) bool { return s.name == exclude })
			if s == nil {
				return nil, refuse(CodeServerDown, "No server is online to run group %s.", g.cfg.Name)
			}
			return s, nil
		}
		s := c.server(target)
		if s == nil {
			return nil, refuse(CodeInvalid, "Target %q is not a server of cluster %s.", target, c.cfg.Name)
		}
		if !s.up {
			return nil, refuse(CodeServerDown, "Target server %s is not online.", s.name)
		}
		return s, nil
	}
	var to *server
	var err error
	from := g.owner
	switch kind {
	case opMove:
		if g.status != StatusOnline {
			return nil, refuse(CodeState, "Group %s is %s; only an Online group can be moved.", g.cfg.Name, g.status)
		}
		if to, err = resolveTarget(g.owner); err != nil {
			return nil, err
		}
		if to.name == g.owner {
			return nil, refuse(CodeState, "Group %s is already online on %s.", g.cfg.Name, to.name)
		}
		g.status = StatusOfflinePending
	case opStart:
		if g.status != StatusOffline {
			return nil, refuse(CodeState, "Group %s is %s; only an Offline group can be started.", g.cfg.Name, g.status)
		}
		if to, err = resolveTarget(""); err != nil {
			return nil, err
		}
		g.status, g.owner = StatusOnlinePending, to.name
	case opStop:
		switch g.status {
		case StatusOnline, StatusOnlineFailure, StatusOfflineFailure:
		default:
			return nil, refuse(CodeState, "Group %s is %s; it cannot be stopped.", g.cfg.Name, g.status)
		}
		g.status = StatusOfflinePending
	default:
		return nil, refuse(CodeInvalid, "unknown operation %q", kind)
	}
	toName := ""
	if to != nil {
		toName = to.name
	}
	rec := c.recordOp(kind, g, toName, from)
	h := &opHandle{done: make(chan struct{})}
	c.ops.Add(1)
	locked = false
	go func() {
		defer c.ops.Done()
		var err error
		switch kind {
		case opMove:
			err = c.doMove(g, from, toName)
		case opStart:
			err = c.activateFrom(g, toName, EventStart, "")
		case opStop:
			err = c.doStop(g, from)
		}
		c.finishOp(rec, err)
		g.unlock()
		h.err = err
		close(h.done)
	}()
	return h, nil
}

// Move moves a group like POST groups/{g}/move and returns once the group
// settled. An empty target means the highest-priority other server that is
// up. It returns nil when the group ended Online, even on another server
// after the target failed to start it (State shows where and why); an error
// wrapping ErrFailed when it ended in Online Failure or Offline Failure,
// naming each server's failure; ErrRefused or ErrNotFound when nothing was done.
func (c *Cluster) Move(ctx context.Context, group, target string) error {
	h, err := c.submit(opMove, group, target)
	if err != nil {
		return fmt.Errorf("move group %s of %s: %w", group, c.cfg.Name, err)
	}
	return h.wait(ctx)
}

// StartGroup starts an Offline group like POST groups/{g}/start.
func (c *Cluster) StartGroup(ctx context.Context, group, target string) error {
	h, err := c.submit(opStart, group, target)
	if err != nil {
		return fmt.Errorf("start group %s of %s: %w", group, c.cfg.Name, err)
	}
	return h.wait(ctx)
}

// StopGroup stops a group like POST groups/{g}/stop.
func (c *Cluster) StopGroup(ctx context.Context, group string) error {
	h, err := c.submit(opStop, group, "")
	if err != nil {
		return fmt.Errorf("stop group %s of %s: %w", group, c.cfg.Name, err)
	}
	return h.wait(ctx)
}

var errServerDown = errors.New("server went down")

func (c *Cluster) doMove(g *group, from, to string) error {
	c.pause(c.cfg.Timing.Pending)
	err := c.deactivate(g, from, EventStart, FactorGroupMove)
	if errors.Is(err, errServerDown) {
		// The old owner crashed while stopping: what is left is a failover.
		return c.failover(g, from, to)
	}
	if err != nil {
		c.update(func() { g.status = StatusOfflineFailure })
		return fmt.Errorf("move group %s from %s to %s: %w: %w", g.cfg.Name, from, to, ErrFailed, err)
	}
	return c.activateFrom(g, to, EventStart, FactorGroupMove)
}

func (c *Cluster) doStop(g *group, owner string) error {
	c.pause(c.cfg.Timing.Pending)
	err := c.deactivate(g, owner, EventStart, FactorGroupStop)
	if errors.Is(err, errServerDown) {
		// Stopped by the crash; the crash pass has nothing left to do.
		c.releaseDisk(g, owner)
		c.update(func() { g.setAll("") })
		return nil
	}
	if err != nil {
		c.update(func() { g.status = StatusOfflineFailure })
		return fmt.Errorf("stop group %s on %s: %w: %w", g.cfg.Name, owner, ErrFailed, err)
	}
	c.update(func() { g.status, g.owner = StatusOffline, "" })
	return nil
}

// deactivate stops the group's resources on srv in reverse dependency order,
// so the stop script runs while the disk is still online (the order
// replication teardown relies on). A failed stop script leaves the disk where
// it is. It returns errServerDown if srv crashed meanwhile.
func (c *Cluster) deactivate(g *group, srv, event, factor string) error {
	var scriptOnline bool
	c.update(func() {
		scriptOnline = g.res[resScript].status == StatusOnline
		if scriptOnline {
			g.res[resScript].status = StatusOfflinePending
		}
	})
	if scriptOnline {
		if err := c.runScript(g, srv, "stop", event, factor); err != nil {
			if !c.isUp(srv) {
				return fmt.Errorf("%s: %w", err, errServerDown)
			}
			c.update(func() { g.res[resScript].status = StatusOfflineFailure })
			return fmt.Errorf("stop script of %s on %s: %w", g.res[resScript].name, srv, err)
		}
	}
	if !c.isUp(srv) {
		return fmt.Errorf("server %s: %w", srv, errServerDown)
	}
	c.update(func() {
		for _, i := range []int{resScript, resFIP} {
			g.res[i].status, g.res[i].owner = StatusOffline, ""
		}
	})
	c.releaseDisk(g, srv)
	return nil
}

// activate brings the group up on srv: disk, then FIP, then the start script.
func (c *Cluster) activate(g *group, srv, event, factor string) error {
	c.update(func() {
		g.status, g.owner = StatusOnlinePending, srv
		g.res[resDisk].status, g.res[resDisk].owner = StatusOnlinePending, srv
	})
	c.pause(c.cfg.Timing.DiskSwitch)
	if !c.isUp(srv) {
		return fmt.Errorf("server %s: %w", srv, errServerDown)
	}
	c.obs.DiskOnline(c.cfg.Name, g.cfg.Name, g.cfg.Disk, srv)
	c.update(func() {
		g.res[resDisk].status = StatusOnline
		g.res[resFIP].status, g.res[resFIP].owner = StatusOnline, srv
		g.res[resScript].status, g.res[resScript].owner = StatusOnlinePending, srv
	})
	if err := c.runScript(g, srv, "start", event, factor); err != nil {
		c.update(func() { g.res[resScript].status = StatusOnlineFailure })
		if !c.isUp(srv) {
			return fmt.Errorf("%s: %w", err, errServerDown)
		}
		return fmt.Errorf("start script of %s on %s: %w", g.res[resScript].name, srv, err)
	}
	c.update(func() { g.res[resScript].status = StatusOnline })
	c.pause(c.cfg.Timing.Pending)
	if !c.isUp(srv) {
		return fmt.Errorf("server %s: %w", srv, errServerDown)
	}
	c.update(func() { g.status = StatusOnline })
	return nil
}

// activateFrom starts the group on first and, when activation fails there,
// on the next servers in priority order that are up and not yet tried, with
// CLP_EVENT=FAILOVER. When none succeeds the group stays Online Failure on
// the last server tried (its disk stays online there, as with ECX's default
// final action "no operation"), or Offline if that server is down.
func (c *Cluster) activateFrom(g *group, first, event, factor string) error {
	tried := map[string]bool{}
	var failures []error
	srv := first
	for {
		err := c.activate(g, srv, event, factor)
		if err == nil {
			if len(failures) > 0 {
				c.log.Info("group failed over after activation failure", "group", g.cfg.Name, "server", srv, "failures", errors.Join(failures...).Error())
			}
			return nil
		}
		failures = append(failures, fmt.Errorf("on %s: %w", srv, err))
		tried[srv] = true
		var next *server
		var up bool
		c.update(func() {
			next = c.firstUp(func(s *server) bool { return tried[s.name] })
			up = c.server(srv).up
		})
		if next == nil && up {
			c.update(func() { g.status = StatusOnlineFailure })
			return fmt.Errorf("group %s could not be started on any server: %w: %w", g.cfg.Name, ErrFailed, errors.Join(failures...))
		}
		// ECX runs no stop script for a script resource that failed to start;
		// it releases the other resources before trying the next server.
		c.releaseDisk(g, srv)
		c.update(func() {
			for i := range g.res {
				g.res[i].status, g.res[i].owner = StatusOffline, ""
			}
		})
		if next == nil {
			c.update(func() { g.setAll("") })
			return fmt.Errorf("group %s could not be started on any server: %w: %w", g.cfg.Name, ErrFailed, errors.Join(failures...))
		}
		srv, event, factor = next.name, EventFailover, FactorGroupFailover
	}
}

// failover moves a group away from a crashed server: no stop script runs
// there, its disk is released, and the group starts on preferred (if up) or
// the highest-priority server that is up, with CLP_EVENT=FAILOVER.
func (c *Cluster) failover(g *group, crashed, preferred string) error {
	c.releaseDisk(g, crashed)
	c.update(func() {
		g.status = StatusOnlinePending
		for i := range g.res {
			g.res[i].status, g.res[i].owner = StatusOffline, ""
		}
	})
	var first *server
	c.update(func() {
		if s := c.server(preferred); s != nil && s.up {
			first = s
		} else {
			first = c.firstUp(nil)
		}
		if first == nil {
			g.setAll("")
		}
	})
	if first == nil {
		return fmt.Errorf("fail over group %s from %s: no server is online: %w", g.cfg.Name, crashed, ErrFailed)
	}
	return c.activateFrom(g, first.name, EventFailover, FactorGroupFailover)
}

// releaseDisk tells the Observer the disk left srv, if it had come online
// there, and only then records it offline: the disk is one thing in the real
// world, so a lab snapshot must never find it offline here while the hosts
// still use it. Only the holder of the group's slot changes its disk.
func (c *Cluster) releaseDisk(g *group, srv string) {
	var online bool
	var seen chan struct{}
	c.update(func() {
		d := &g.res[resDisk]
		online = d.owner == srv && (d.status == StatusOnline || d.status == StatusOfflinePending)
		seen = c.server(srv).crashSeen
	})
	if !online {
		return
	}
	<-seen
	c.obs.DiskOffline(c.cfg.Name, g.cfg.Name, g.cfg.Disk, srv)
	c.update(func() { g.res[resDisk].status, g.res[resDisk].owner = StatusOffline, "" })
}

func (c *Cluster) isUp(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.server(name)
	return s != nil && s.up
}

// lockServer locks the cluster and finds a server for op; on an error the
// cluster is left unlocked.
func (c *Cluster) lockServer(op, name string) (*server, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, closedRefusal
	}
	srv := c.server(name)
	if srv == nil {
		c.mu.Unlock()
		return nil, fmt.Errorf("%s: %w", op, notFound("server", name))
	}
	return srv, nil
}

// ServerDown crashes a server: its scripts are killed, its API endpoint (if
// served by Listen under the server's name) refuses connections, the Observer
// hears ServerDown, and every group it owned fails over. It returns when
// those groups settled; the error names groups that could not be started.
func (c *Cluster) ServerDown(ctx context.Context, name string) error {
	srv, err := c.lockServer("server down", name)
	if err != nil {
		return err
	}
	if !srv.up {
		c.mu.Unlock()
		return fmt.Errorf("server down: %w", refuse(CodeState, "Server %s is already down.", srv.name))
	}
	srv.up = false
	seen := make(chan struct{})
	srv.crashSeen = seen
	srv.cancel()
	c.ops.Add(1)
	c.mu.Unlock()
	c.log.Warn("server crashed", "server", srv.name)
	syncErr := c.syncEndpoints()
	c.obs.ServerDown(c.cfg.Name, srv.name)
	close(seen)

	done := make(chan error, 1)
	go func() {
		defer c.ops.Done()
		var (
			wg   sync.WaitGroup
			emu  sync.Mutex
			errs []error
		)
		for _, g := range c.groups {
			wg.Go(func() {
				if err := c.recoverGroup(g, srv.name); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			})
		}
		wg.Wait()
		done <- errors.Join(errs...)
	}()
	select {
	case err := <-done:
		return errors.Join(syncErr, err)
	case <-ctx.Done():
		return errors.Join(syncErr, fmt.Errorf("waiting for groups of %s to fail over (they go on): %w", srv.name, ctx.Err()))
	}
}

// recoverGroup fails a group over if it is still on the crashed server once
// any operation it was in has settled.
func (c *Cluster) recoverGroup(g *group, crashed string) error {
	if err := g.lock(c.ctx); err != nil {
		return nil
	}
	defer g.unlock()
	var rec *OpRecord
	c.update(func() {
		if g.owner == crashed && g.status != StatusOffline {
			rec = c.recordOp(opFailover, g, "", crashed)
		}
	})
	if rec == nil {
		return nil
	}
	err := c.failover(g, crashed, "")
	c.finishOp(rec, err)
	return err
}

// ServerUp brings a crashed server back into the cluster. The Observer hears
// ServerUp before any group can start there. Groups do not fail back by
// themselves.
func (c *Cluster) ServerUp(ctx context.Context, name string) error {
	srv, err := c.lockServer("server up", name)
	if err != nil {
		return err
	}
	if srv.up || srv.booting {
		c.mu.Unlock()
		return fmt.Errorf("server up: %w", refuse(CodeState, "Server %s is already up.", srv.name))
	}
	srv.booting = true
	seen := srv.crashSeen
	c.mu.Unlock()
	// A crash still being told to the Observer must land before the boot,
	// or the lab would boot a host that then crashes while ECX says Online.
	select {
	case <-seen:
	case <-ctx.Done():
		c.mu.Lock()
		srv.booting = false
		c.mu.Unlock()
		return fmt.Errorf("server up %s: waiting for its crash to be handled: %w", srv.name, ctx.Err())
	}
	c.obs.ServerUp(c.cfg.Name, srv.name)
	c.mu.Lock()
	srv.booting = false
	srv.up = true
	srv.ctx, srv.cancel = context.WithCancel(c.ctx)
	c.mu.Unlock()
	c.log.Info("server up", "server", srv.name)
	return c.syncEndpoints()
}

const closeGrace = 2 * time.Second

// Close lets running operations settle for a short grace period, then kills
// their scripts, stops the endpoints started by Listen and removes temporary
// script directories.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.closing)
	c.mu.Unlock()

	done := make(chan struct{})
	go func() { c.ops.Wait(); close(done) }()
	t := time.NewTimer(closeGrace)
	select {
	case <-done:
	case <-t.C:
		c.log.Warn("operations still running at close; killing their scripts")
	}
	t.Stop()
	c.cancel()
	<-done
	err := c.closeEndpoints()
	c.removeTempDirs()
	return err
}

func (c *Cluster) removeTempDirs() {
	for _, g := range c.groups {
		if g.tempDir {
			os.RemoveAll(g.dir)
		}
	}
}

// ClusterState is a JSON-able snapshot of the cluster for the lab and tests.
type ClusterState struct {
	Name      string          `json:"name"`
	Status    string          `json:"status"`
	Servers   []ServerState   `json:"servers"`
	Groups    []GroupState    `json:"groups"`
	Endpoints []EndpointState `json:"endpoints"`
	Faults    []Fault         `json:"faults"`
	Ops       []OpRecord      `json:"ops"`     // the last 100 group operations, oldest first
	Scripts   []ScriptRun     `json:"scripts"` // the last 100 script runs, oldest first
}

type ServerState struct {
	Name   string `json:"name"`
	Status string `json:"status"` // Online or Offline
}

type GroupState struct {
	Name       string          `json:"name"`
	Status     string          `json:"status"`
	Owner      string          `json:"owner"` // "" when the group runs nowhere
	Disk       string          `json:"disk"`
	DiskOnline string          `json:"disk_online"` // server where the disk is online (or coming online), "" none
	Busy       bool            `json:"busy"`        // an operation is running
	Resources  []ResourceState `json:"resources"`
}

type ResourceState struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Owner  string `json:"owner"`
}

// Group returns the named group of the snapshot, or the zero GroupState
// when the cluster has none by that name.
func (s ClusterState) Group(name string) GroupState {
	for _, g := range s.Groups {
		if g.Name == name {
			return g
		}
	}
	return GroupState{}
}

// State returns a snapshot of the whole cluster.
func (c *Cluster) State() ClusterState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := ClusterState{
		Name:      c.cfg.Name,
		Status:    c.clusterStatus(),
		Servers:   []ServerState{},
		Groups:    []GroupState{},
		Endpoints: c.endpointStates(),
		Faults:    []Fault{},
		Ops:       []OpRecord{},
		Scripts:   append([]ScriptRun{}, c.runs...),
	}
	for _, s := range c.servers {
		st.Servers = append(st.Servers, ServerState{Name: s.name, Status: serverStatus(s)})
	}
	for _, g := range c.groups {
		gs := GroupState{Name: g.cfg.Name, Status: g.status, Owner: g.owner, Disk: g.cfg.Disk,
			DiskOnline: g.res[resDisk].owner, Busy: len(g.slot) > 0}
		for _, r := range g.res {
			gs.Resources = append(gs.Resources, ResourceState{Name: r.name, Type: r.typ, Status: r.status, Owner: r.owner})
		}
		st.Groups = append(st.Groups, gs)
	}
	for _, f := range c.faults {
		st.Faults = append(st.Faults, *f)
	}
	for _, r := range c.opLog {
		st.Ops = append(st.Ops, *r)
	}
	return st
}

func serverStatus(s *server) string {
	if s.up {
		return StatusOnline
	}
	return StatusOffline
}

// clusterStatus is Normal when every server is up and no group failed,
// Caution otherwise, Error when no server is up. Caller holds mu.
func (c *Cluster) clusterStatus() string {
	up := 0
	for _, s := range c.servers {
		if s.up {
			up++
		}
	}
	if up == 0 {
		return "Error"
	}
	if up < len(c.servers) {
		return "Caution"
	}
	for _, g := range c.groups {
		if g.status == StatusOnlineFailure || g.status == StatusOfflineFailure {
			return "Caution"
		}
	}
	return "Normal"
}
