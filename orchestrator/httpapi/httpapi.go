// Package httpapi is hvro's HTTP API (CONTRACTS.md section 3): hooks from
// ECX scripts, pair status and operator actions, the journal, cluster
// observations, metrics and health. Every error is
// {"error":{"code","message"}}; a cluster's hook token acts on that
// cluster's groups only; tokens are compared in constant time.
package httpapi

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/store"
)

// Controller is what the API drives (orchestrator.Controller).
type Controller interface {
	Hook(ctx context.Context, h orchestrator.HookRequest, wait time.Duration) (orchestrator.HookResult, error)
	Reconcile(name string) error
	SetPaused(name string, paused bool) error
	Failover(name string, req orchestrator.FailoverRequest) (uint64, <-chan orchestrator.PassResult, error)
	PairNames() []string
	Groups() map[orchestrator.GroupKey]orchestrator.GroupState
}

// Deps are what the API needs; Reload and Ready may be nil.
type Deps struct {
	Controller Controller
	Store      interface {
		View(fn func(store.Tx) error) error
	}
	// AdminToken and HookTokens (by cluster) authenticate callers.
	AdminToken string
	HookTokens map[string]string
	// MetricsPublic serves /metrics without a token.
	MetricsPublic bool
	Metrics       http.Handler
	// Clusters returns, per cluster, the configured endpoints.
	Clusters func() map[string][]string
	// Reload re-reads the configuration; an error keeps the old one.
	Reload func(ctx context.Context) error
	// Ready reports readiness (store open, config loaded, workers up).
	Ready func() error
	// OnHook counts hook calls (cluster, phase, outcome).
	OnHook func(cluster, phase, outcome string)
	// Backup writes a consistent copy of the store (GET /v1/backup).
	Backup func(w io.Writer) (int64, error)
	// TempDir holds GET /v1/backup's snapshot while it is sent; default
	// os.TempDir(). The data_dir is the natural place: private, and with
	// room for a copy of the store.
	TempDir string
	// BackupSlot admits one GET /v1/backup at a time (each snapshot is a
	// copy of the store on the store's own disk); give the same channel of
	// capacity 1 to every Handler a reload builds. Nil: one of its own.
	BackupSlot chan struct{}
	// WriteTimeout bounds how long writing an answer may take (for a
	// backup: each chunk of it), so a client that does not read cannot
	// hold a connection and its memory; default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// HookMaxWait is hooks.max_wait: a longer ?wait= is shortened to it
	// (and to maxHookWait); zero answers every hook at once.
	HookMaxWait time.Duration
	Logger      *slog.Logger
	Version     string
}

// DefaultWriteTimeout is Deps.WriteTimeout's default.
const DefaultWriteTimeout = 30 * time.Second

const (
	maxBody = 64 << 10
	// maxHookWait caps hooks.max_wait (CONTRACTS: "at most 30m").
	maxHookWait = 30 * time.Minute
)

// Handler returns the API.
func Handler(d Deps) http.Handler {
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if d.WriteTimeout <= 0 {
		d.WriteTimeout = DefaultWriteTimeout
	}
	if d.BackupSlot == nil {
		d.BackupSlot = make(chan struct{}, 1)
	}
	a := &api{d: d, admin: digest(d.AdminToken), hooks: map[string][32]byte{}}
	for c, t := range d.HookTokens {
		a.hooks[c] = digest(t)
	}
	r := chi.NewRouter()
	r.Use(a.requestID, a.recoverer, a.writeDeadline)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("%s %s is not an API route", echoPlain(r.Method), echoPlain(r.URL.Path)))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "method_not_allowed", fmt.Sprintf("%s is not allowed on %s", echoPlain(r.Method), echoPlain(r.URL.Path)))
	})
	healthz := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": d.Version})
	}
	readyz := func(w http.ResponseWriter, r *http.Request) {
		if d.Ready != nil {
			if err := d.Ready(); err != nil {
				writeError(w, http.StatusServiceUnavailable, "not_ready", err.Error())
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
	// Load balancers probe with HEAD too; net/http drops the body.
	r.Get("/healthz", healthz)
	r.Head("/healthz", healthz)
	r.Get("/readyz", readyz)
	r.Head("/readyz", readyz)
	r.Group(func(r chi.Router) {
		if !d.MetricsPublic {
			r.Use(a.adminOnly)
		}
		if d.Metrics != nil {
			r.Method(http.MethodGet, "/metrics", d.Metrics)
		}
	})
	r.Post("/v1/hooks", a.hook)
	r.Group(func(r chi.Router) {
		r.Use(a.adminOnly)
		r.Get("/v1/pairs", a.listPairs)
		r.Get("/v1/pairs/{name}", a.getPair)
		r.Post("/v1/pairs/{name}/reconcile", a.pairAction("reconcile"))
		r.Post("/v1/pairs/{name}/pause", a.pairAction("pause"))
		r.Post("/v1/pairs/{name}/resume", a.pairAction("resume"))
		r.Post("/v1/pairs/{name}/failover", a.failover)
		r.Get("/v1/operations", a.listOps)
		r.Get("/v1/operations/{id}", a.getOp)
		r.Get("/v1/clusters", a.clusters)
		r.Post("/v1/config/reload", a.reload)
		r.Get("/v1/backup", a.backup)
	})
	return r
}

type api struct {
	d     Deps
	admin [32]byte
	hooks map[string][32]byte
}

type ctxKey int

const requestIDKey ctxKey = iota

// digest hashes a token so comparisons take the same time whatever the
// lengths are; an empty token never authenticates.
func digest(token string) [32]byte {
	if token == "" {
		var zero [32]byte
		return zero
	}
	return sha256.Sum256([]byte(token))
}

func tokenMatches(want [32]byte, got string) bool {
	var zero [32]byte
	if want == zero || got == "" {
		return false
	}
	g := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(want[:], g[:]) == 1
}

func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", false
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

func (a *api) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), requestIDKey, id)))
		if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && r.URL.Path != "/metrics" {
			a.d.Logger.Info("http", "request_id", id, "method", cut(r.Method, maxLogged), "path", cut(r.URL.Path, maxLogged), "status", sw.status, "duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr)
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (a *api) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.d.Logger.Error("panic in handler", "path", cut(r.URL.Path, maxLogged), "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal", "internal error; see the hvro log")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// writeDeadline gives every answer WriteTimeout to be written, counted
// from the request; a hook's long poll and a backup extend their own.
func (a *api) writeDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// An httptest.ResponseRecorder has no connection: nothing to bound.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(a.d.WriteTimeout))
		next.ServeHTTP(w, r)
	})
}

func (a *api) adminOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := bearer(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="hvro"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer <admin token>")
			return
		}
		if !tokenMatches(a.admin, tok) {
			for _, h := range a.hooks {
				if tokenMatches(h, tok) {
					writeError(w, http.StatusForbidden, "forbidden", "a hook token may only post hooks; this needs the admin token")
					return
				}
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="hvro", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "the bearer token is not valid")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// hookBody is POST /v1/hooks.
type hookBody struct {
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
	Server  string `json:"server"`
	Phase   string `json:"phase"`
	Event   string `json:"event"`
	Factor  string `json:"factor"`
	Disk    string `json:"disk"`
}

func (a *api) hook(w http.ResponseWriter, r *http.Request) {
	count := func(cluster, phase, outcome string) {
		if a.d.OnHook != nil {
			if _, known := a.hooks[cluster]; !known {
				cluster = "unknown"
			}
			// The controller takes the phase in any case; so does the label.
			switch phase = strings.ToLower(phase); phase {
			case "start", "stop":
			default:
				phase = "invalid"
			}
			a.d.OnHook(cluster, phase, outcome)
		}
	}
	tok, ok := bearer(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hvro"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "missing bearer token: send Authorization: Bearer <hook token of the cluster>")
		count("unknown", "", "rejected")
		return
	}
	// The token is checked before the body is read: a caller without one
	// learns nothing of the body's rules. Which cluster it may act on is
	// checked once the body names the cluster.
	cluster := ""
	for c, d := range a.hooks {
		if tokenMatches(d, tok) {
			cluster = c
		}
	}
	admin := cluster == "" && tokenMatches(a.admin, tok)
	if cluster == "" && !admin {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hvro", error="invalid_token"`)
		writeError(w, http.StatusUnauthorized, "unauthorized", "the bearer token is not a hook token")
		count("unknown", "", "rejected")
		return
	}
	var b hookBody
	if !decodeBody(w, r, &b) {
		count(cluster, "", "rejected")
		return
	}
	switch {
	case admin:
		cluster = b.Cluster // the admin may post any cluster's hook
	case cluster != b.Cluster:
		writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("the hook token of %s cannot act on cluster %s", cluster, echo(b.Cluster)))
		count(cluster, b.Phase, "rejected")
		return
	}
	var missing []string
	for _, f := range []struct{ name, v string }{{"cluster", b.Cluster}, {"group", b.Group}, {"server", b.Server}, {"phase", b.Phase}} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "invalid_body", "body: missing "+strings.Join(missing, ", "))
		count(b.Cluster, b.Phase, "rejected")
		return
	}
	wait := time.Duration(0)
	if s := r.URL.Query().Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("wait=%s: want a Go duration of 0 or more, e.g. 5m", echo(s)))
			count(b.Cluster, b.Phase, "rejected")
			return
		}
		// A script asking for more than hooks.max_wait gets max_wait: its
		// answer may say "pending", which hvro hook maps to exit 0.
		wait = min(d, a.d.HookMaxWait, maxHookWait)
	}
	// The answer comes when the pass ends: the write deadline counts from then.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(wait + a.d.WriteTimeout))
	res, err := a.d.Controller.Hook(r.Context(), orchestrator.HookRequest{Cluster: b.Cluster, Group: b.Group, Server: b.Server,
		Phase: b.Phase, Event: b.Event, Factor: b.Factor, Disk: b.Disk}, wait)
	if err != nil {
		status, code := http.StatusInternalServerError, "internal"
		switch {
		case errors.Is(err, orchestrator.ErrInvalidHook):
			status, code = http.StatusBadRequest, "invalid_body"
		case errors.Is(err, orchestrator.ErrUnknownGroup):
			status, code = http.StatusNotFound, "unknown_group"
		case errors.Is(err, orchestrator.ErrUnknownServer):
			status, code = http.StatusBadRequest, "unknown_server"
		case errors.Is(err, orchestrator.ErrStopping):
			status, code = http.StatusServiceUnavailable, "stopping"
		}
		writeError(w, status, code, err.Error())
		count(b.Cluster, b.Phase, "rejected")
		return
	}
	count(b.Cluster, b.Phase, string(res.Outcome))
	writeJSON(w, http.StatusOK, res)
}

// decodeBody reads a JSON body strictly: size-limited, unknown fields and
// trailing data rejected, the offending part named.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", fmt.Sprintf("Content-Type %s: send application/json", echo(ct)))
		return false
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("body larger than %d bytes", maxBody))
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "invalid_body", "body: empty; send a JSON object")
		default:
			writeError(w, http.StatusBadRequest, "invalid_body", "body: "+err.Error())
		}
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_body", "body: more than one JSON value")
		return false
	}
	return true
}

// PairView is a pair as GET /v1/pairs shows it.
type PairView struct {
	Name            string          `json:"name"`
	VMName          string          `json:"vm_name"`
	Primary         SideView        `json:"primary"`
	Replica         SideView        `json:"replica"`
	Phase           store.Phase     `json:"phase"`
	Paused          bool            `json:"paused"`
	Degraded        *store.Degraded `json:"degraded,omitempty"`
	Replication     ReplicationView `json:"replication"`
	Generation      uint64          `json:"generation"`
	LastOp          uint64          `json:"last_op,omitempty"`
	LastConvergedAt *time.Time      `json:"last_converged_at,omitempty"`
	UpdatedAt       time.Time       `json:"updated_at"`
}

// SideView is one side of a pair.
type SideView struct {
	Cluster string `json:"cluster"`
	Group   string `json:"group"`
	Host    string `json:"host,omitempty"`
}

// ReplicationView is the replication as last inspected.
type ReplicationView struct {
	State           string     `json:"state,omitempty"`
	Health          string     `json:"health,omitempty"`
	PrimaryServer   string     `json:"primary_server,omitempty"`
	ReplicaServer   string     `json:"replica_server,omitempty"`
	LastReplication *time.Time `json:"last_replication,omitempty"`
	LagSeconds      *float64   `json:"lag_seconds,omitempty"`
}

func pairView(p store.Pair, now time.Time) PairView {
	v := PairView{
		Name: p.Name, VMName: p.Config.VMName,
		Primary: SideView{Cluster: p.Config.Primary.Cluster, Group: p.Config.Primary.Group, Host: p.ActivePrimaryHost},
		Replica: SideView{Cluster: p.Config.Replica.Cluster, Group: p.Config.Replica.Group, Host: p.ActiveReplicaHost},
		Phase:   p.Phase, Paused: p.Paused, Degraded: p.Degraded, Generation: p.Generation, LastOp: p.LastOpID, UpdatedAt: p.UpdatedAt,
		Replication: ReplicationView{State: p.Replication.State, Health: p.Replication.Health,
			PrimaryServer: p.Replication.PrimaryServer, ReplicaServer: p.Replication.ReplicaServer},
	}
	if !p.LastConvergedAt.IsZero() {
		t := p.LastConvergedAt
		v.LastConvergedAt = &t
	}
	if !p.Replication.LastReplication.IsZero() {
		t := p.Replication.LastReplication
		lag := now.Sub(t).Seconds()
		v.Replication.LastReplication, v.Replication.LagSeconds = &t, &lag
	}
	return v
}

func (a *api) listPairs(w http.ResponseWriter, r *http.Request) {
	managed := map[string]bool{}
	for _, n := range a.d.Controller.PairNames() {
		managed[n] = true
	}
	out := []PairView{}
	err := a.d.Store.View(func(tx store.Tx) error {
		pairs, err := tx.Pairs()
		if err != nil {
			return err
		}
		for _, p := range pairs {
			if managed[p.Name] {
				out = append(out, pairView(p, time.Now()))
			}
		}
		return nil
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"pairs": out})
}

// PairDetail is GET /v1/pairs/{name}.
type PairDetail struct {
	PairView
	Observations []store.Observation `json:"observations"`
	Operations   []store.Operation   `json:"operations"`
	Events       []store.Event       `json:"events"`
}

func (a *api) getPair(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	var d PairDetail
	err := a.d.Store.View(func(tx store.Tx) error {
		p, err := tx.Pair(name)
		if err != nil {
			return err
		}
		d.PairView = pairView(p, time.Now())
		d.Observations = []store.Observation{}
		for _, s := range []store.Side{p.Config.Primary, p.Config.Replica} {
			if o, err := tx.Observation(s.Cluster, s.Group); err == nil {
				d.Observations = append(d.Observations, o)
			}
		}
		if d.Operations, err = tx.Operations(store.OpFilter{Pair: name, Limit: 10}); err != nil {
			return err
		}
		d.Events, err = tx.Events(store.EventFilter{Pair: name, Limit: 20})
		return err
	})
	if errors.Is(err, store.ErrNotFound) || !slices.Contains(a.d.Controller.PairNames(), name) {
		writeError(w, http.StatusNotFound, "unknown_pair", fmt.Sprintf("no pair %s is configured", echo(name)))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	if d.Operations == nil {
		d.Operations = []store.Operation{}
	}
	if d.Events == nil {
		d.Events = []store.Event{}
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *api) pairAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := chi.URLParam(r, "name")
		var err error
		switch action {
		case "reconcile":
			err = a.d.Controller.Reconcile(name)
		case "pause":
			err = a.d.Controller.SetPaused(name, true)
		case "resume":
			err = a.d.Controller.SetPaused(name, false)
		}
		if err != nil {
			writeControllerError(w, err)
			return
		}
		status := http.StatusOK
		if action == "reconcile" {
			status = http.StatusAccepted
		}
		writeJSON(w, status, map[string]string{"pair": name, "action": action, "result": "done"})
	}
}

func writeControllerError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, orchestrator.ErrUnknownPair):
		writeError(w, http.StatusNotFound, "unknown_pair", err.Error())
	case errors.Is(err, orchestrator.ErrPaused):
		writeError(w, http.StatusConflict, "paused", err.Error())
	case errors.Is(err, orchestrator.ErrBusy):
		writeError(w, http.StatusConflict, "operation_in_progress", err.Error())
	case errors.Is(err, orchestrator.ErrStopping):
		writeError(w, http.StatusServiceUnavailable, "stopping", err.Error())
	case errors.Is(err, orchestrator.ErrInvalidFailover):
		writeError(w, http.StatusBadRequest, "invalid_body", "body: "+err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

func (a *api) failover(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Mode string `json:"mode"`
		// Force and Reason: an unplanned failover without evidence that
		// the primary site stopped the VM (the site is gone).
		Force  bool   `json:"force"`
		Reason string `json:"reason"`
	}
	if !decodeBody(w, r, &b) {
		return
	}
	if b.Mode != "planned" && b.Mode != "unplanned" {
		writeError(w, http.StatusBadRequest, "invalid_body", fmt.Sprintf("body: mode %s: want planned or unplanned", echo(b.Mode)))
		return
	}
	id, _, err := a.d.Controller.Failover(chi.URLParam(r, "name"), orchestrator.FailoverRequest{Planned: b.Mode == "planned", Force: b.Force, Reason: b.Reason})
	if err != nil {
		writeControllerError(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"op": id, "mode": b.Mode})
}

func (a *api) listOps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := 50
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			writeError(w, http.StatusBadRequest, "invalid_query", fmt.Sprintf("limit=%s: want a number from 1 to 1000", echo(s)))
			return
		}
		limit = n
	}
	pair := q.Get("pair")
	if pair != "" && !slices.Contains(a.d.Controller.PairNames(), pair) {
		writeError(w, http.StatusNotFound, "unknown_pair", fmt.Sprintf("no pair %s is configured", echo(pair)))
		return
	}
	var ops []store.Operation
	err := a.d.Store.View(func(tx store.Tx) error {
		var err error
		ops, err = tx.Operations(store.OpFilter{Pair: pair, Limit: limit})
		return err
	})
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	if ops == nil {
		ops = []store.Operation{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"operations": ops})
}

func (a *api) getOp(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id == 0 {
		writeError(w, http.StatusBadRequest, "invalid_path", fmt.Sprintf("operation id %s: want a positive number", echo(chi.URLParam(r, "id"))))
		return
	}
	var op store.Operation
	err = a.d.Store.View(func(tx store.Tx) error {
		var err error
		op, err = tx.Operation(id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "unknown_operation", fmt.Sprintf("no operation %d", id))
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, op)
}

// ClusterView is one cluster in GET /v1/clusters.
type ClusterView struct {
	Name      string      `json:"name"`
	Endpoints []string    `json:"endpoints"`
	Healthy   bool        `json:"api_healthy"`
	Groups    []GroupView `json:"groups"`
}

// GroupView is the last word on a group.
type GroupView struct {
	Group     string                    `json:"group"`
	Effective orchestrator.Observation  `json:"effective"`
	Poll      *orchestrator.Observation `json:"poll,omitempty"`
	Hook      *orchestrator.Observation `json:"hook,omitempty"`
}

func (a *api) clusters(w http.ResponseWriter, r *http.Request) {
	byCluster := map[string]*ClusterView{}
	if a.d.Clusters != nil {
		for name, eps := range a.d.Clusters() {
			byCluster[name] = &ClusterView{Name: name, Endpoints: eps, Healthy: true, Groups: []GroupView{}}
		}
	}
	for k, g := range a.d.Controller.Groups() {
		cv := byCluster[k.Cluster]
		if cv == nil {
			cv = &ClusterView{Name: k.Cluster, Healthy: true, Groups: []GroupView{}}
			byCluster[k.Cluster] = cv
		}
		gv := GroupView{Group: k.Group, Effective: g.Effective()}
		if !g.Poll.At.IsZero() {
			p := g.Poll
			gv.Poll = &p
			if p.Err != "" {
				cv.Healthy = false
			}
		}
		if !g.Hook.At.IsZero() {
			h := g.Hook
			gv.Hook = &h
		}
		cv.Groups = append(cv.Groups, gv)
	}
	out := []ClusterView{}
	for _, cv := range byCluster {
		sort.Slice(cv.Groups, func(i, j int) bool { return cv.Groups[i].Group < cv.Groups[j].Group })
		out = append(out, *cv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"clusters": out})
}

func (a *api) reload(w http.ResponseWriter, r *http.Request) {
	if a.d.Reload == nil {
		writeError(w, http.StatusNotImplemented, "not_supported", "this server cannot reload its configuration")
		return
	}
	if err := a.d.Reload(r.Context()); err != nil {
		writeErrorUpTo(w, http.StatusBadRequest, "invalid_config", "the new configuration was rejected; the old one stays in force:\n"+err.Error(), maxBody)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": "reloaded"})
}

// snapshotPattern names GET /v1/backup's snapshot files in TempDir.
const snapshotPattern = ".hvro-backup-*.db"

// RemoveSnapshots removes the snapshot files GET /v1/backup left in dir
// when hvro was killed while sending one; call it at start, before the
// API serves.
func RemoveSnapshots(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, snapshotPattern))
	if err != nil {
		return err
	}
	var errs []error
	for _, n := range names {
		if err := os.Remove(n); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (a *api) backup(w http.ResponseWriter, r *http.Request) {
	if a.d.Backup == nil {
		writeError(w, http.StatusNotImplemented, "not_supported", "this server cannot take backups")
		return
	}
	select {
	case a.d.BackupSlot <- struct{}{}:
		defer func() { <-a.d.BackupSlot }()
	default:
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusTooManyRequests, "backup_in_progress", "another backup is being taken; try again when it is done")
		return
	}
	// The snapshot goes to a file first, and only the file goes to the
	// client: the store's read transaction must never wait on a client,
	// because bbolt cannot grow its map while one is open, and then every
	// write of hvro would wait for a client that does not read.
	f, err := os.CreateTemp(a.d.TempDir, snapshotPattern)
	if err != nil {
		a.d.Logger.Error("backup: create the snapshot file", "error", err)
		writeError(w, http.StatusInternalServerError, "backup", "cannot create the snapshot file; see the hvro log")
		return
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	n, err := a.d.Backup(f)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		a.d.Logger.Error("backup: snapshot", "bytes", n, "error", err)
		writeError(w, http.StatusInternalServerError, "backup", "cannot take a snapshot of the store; see the hvro log")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="hvro.db"`)
	// With the length announced, a cut transfer is an error to the client,
	// never a short "successful" file.
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	rc := http.NewResponseController(w)
	buf := make([]byte, 64<<10)
	var sent int64
	for sent < n {
		k, rerr := f.Read(buf[:min(int64(len(buf)), n-sent)])
		if k > 0 {
			// Each chunk gets its own deadline: a large store on a slow
			// link may take long in all, a client that stopped reading not.
			_ = rc.SetWriteDeadline(time.Now().Add(a.d.WriteTimeout))
			if _, err := w.Write(buf[:k]); err != nil {
				a.d.Logger.Warn("backup: the client stopped reading", "sent", sent, "bytes", n, "error", err)
				panic(http.ErrAbortHandler)
			}
			sent += int64(k)
		}
		if rerr != nil && sent < n {
			a.d.Logger.Error("backup: read the snapshot file", "sent", sent, "bytes", n, "error", rerr)
			panic(http.ErrAbortHandler)
		}
	}
}

// Bounds on what an answer or a log line repeats of a request, so a
// 200,000-character path cannot come back as a 200 KB body (times six
// after JSON escaping) to every client that asks.
const (
	maxEcho    = 128  // bytes of one input value in a message
	maxMessage = 1024 // bytes of an error message (an admin's reload: maxBody)
	maxLogged  = 256  // bytes of a path or method in the log
)

// echo shows a client's input in a message: cut to maxEcho bytes, then
// Go-quoted, so control characters and invalid UTF-8 arrive escaped.
func echo(s string) string {
	if len(s) <= maxEcho {
		return strconv.Quote(s)
	}
	return strconv.Quote(cut(s, maxEcho)) + fmt.Sprintf("... (%d bytes)", len(s))
}

// echoPlain is echo for a value that reads better bare (a method, a path):
// printable text without spaces or quotes of at most maxEcho bytes is shown
// as it is.
func echoPlain(s string) string {
	// unicode.IsGraphic is false for format characters (Cf): the bidi overrides and isolates are escaped too.
	if len(s) <= maxEcho && strings.IndexFunc(s, func(r rune) bool { return !unicode.IsGraphic(r) || r == '"' || r == ' ' }) < 0 && utf8.ValidString(s) {
		return s
	}
	return echo(s)
}

// cut shortens s to at most n bytes without splitting a UTF-8 sequence.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeErrorUpTo(w, status, code, msg, maxMessage)
}

// writeErrorUpTo bounds the message to limit bytes: errors of lower
// layers may quote what a client sent.
func writeErrorUpTo(w http.ResponseWriter, status int, code, msg string, limit int) {
	if len(msg) > limit {
		msg = cut(msg, limit) + fmt.Sprintf("... (%d more bytes not shown)", len(msg)-len(cut(msg, limit)))
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)+1))
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}
