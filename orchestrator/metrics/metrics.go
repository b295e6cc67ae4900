// Package metrics exports hvro's Prometheus metrics from its own registry.
// Label values are bounded: pair, cluster, group, host and endpoint names
// come from the configuration, outcomes and states from fixed sets; error
// text never becomes a label.
package metrics

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hvro/hvro/store"
)

// PairStates are the values of hvro_pair_state's state label.
var PairStates = func() []string {
	var out []string
	for _, p := range store.Phases {
		out = append(out, string(p))
	}
	return out
}()

// Metrics holds every hvro metric.
type Metrics struct {
	reg *prometheus.Registry

	pairState     *prometheus.GaugeVec
	pairHealth    *prometheus.GaugeVec
	pairDegraded  *prometheus.GaugeVec
	lastConverged *prometheus.GaugeVec
	operations    *prometheus.CounterVec
	operationTime *prometheus.HistogramVec
	stepTime      *prometheus.HistogramVec
	winrmRequests *prometheus.CounterVec
	winrmTime     *prometheus.HistogramVec
	winrmAbandon  *prometheus.CounterVec
	hostIdentity  *prometheus.GaugeVec
	ecxRequests   *prometheus.CounterVec
	groupOwner    *prometheus.GaugeVec
	queueDepth    prometheus.Gauge
	hookRequests  *prometheus.CounterVec
	buildInfo     *prometheus.GaugeVec
	mu            sync.Mutex
	owners        map[[2]string]string // cluster/group -> server currently exported
	reasons       map[string]string    // pair -> degraded reason currently exported
}

// New creates the metrics and registers them with Go and process collectors.
func New(version string) *Metrics {
	m := &Metrics{
		reg:     prometheus.NewRegistry(),
		owners:  map[[2]string]string{},
		reasons: map[string]string{},
		pairState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_pair_state",
			Help: "1 for the pair's current state (Pending, Waiting, Converging, Converged, Degraded, Paused), 0 for the others."}, []string{"pair", "state"}),
		pairHealth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_pair_replication_health",
			Help: "Hyper-V replication health on the primary: 0 unknown or not replicating, 1 Normal, 2 Warning, 3 Critical."}, []string{"pair"}),
		pairDegraded: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_pair_degraded_info",
			Help: "1 while a pair is Degraded, with the reason (a short stable word: auth_refused, not_winrm, step_failed, retries_exhausted, side_unavailable, ...)."}, []string{"pair", "reason"}),
		lastConverged: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_pair_last_converged_timestamp_seconds",
			Help: "Unix time the pair was last seen converged."}, []string{"pair"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hvro_operations_total",
			Help: "Journaled operations by kind (reconcile, stop-hook, failover-planned, failover-unplanned) and outcome (succeeded, failed, abandoned, interrupted)."}, []string{"kind", "outcome"}),
		operationTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hvro_operation_duration_seconds",
			Help: "Duration of journaled operations.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}, []string{"kind"}),
		stepTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hvro_step_duration_seconds",
			Help: "Duration of plan steps, by step kind.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, []string{"step"}),
		winrmRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hvro_winrm_requests_total",
			Help: "WinRM commands by host and outcome (ok, transient, permanent, unknown)."}, []string{"host", "outcome"}),
		winrmTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "hvro_winrm_request_duration_seconds",
			Help: "Duration of WinRM commands, by host.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)}, []string{"host"}),
		winrmAbandon: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hvro_winrm_abandoned_total",
			Help: "WinRM commands whose caller stopped waiting (deadline or cancel) before the command ended, by host; the host's slot is freed at once and the command's goroutine finishes or, if the WinRM library is stuck, is left behind."}, []string{"host"}),
		hostIdentity: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_host_identity_mismatch",
			Help: "1 when the identity a Hyper-V host reports (its computer name and domain) matches neither its ECX server name nor its replica_name or WinRM URL host (set replica_name), 0 when it matches; absent until learned."}, []string{"host"}),
		ecxRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hvro_ecx_requests_total",
			Help: "ECX RESTful API calls by cluster, endpoint and outcome (ok, auth, not_found, api_error, transport, decode)."}, []string{"cluster", "endpoint", "outcome"}),
		groupOwner: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_ecx_group_owner_info",
			Help: "1 for the server ECX reports as the Online owner of a group."}, []string{"cluster", "group", "server"}),
		queueDepth: prometheus.NewGauge(prometheus.GaugeOpts{Name: "hvro_queue_depth",
			Help: "Pairs waiting for a pass."}),
		hookRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hvro_hook_requests_total",
			Help: "Hook calls from ECX scripts by cluster, phase and outcome (ok, degraded, failed, pending, rejected)."}, []string{"cluster", "phase", "outcome"}),
		buildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "hvro_build_info",
			Help: "Always 1; the version label says which hvro runs."}, []string{"version"}),
	}
	m.reg.MustRegister(m.pairState, m.pairHealth, m.pairDegraded, m.lastConverged, m.operations, m.operationTime, m.stepTime,
		m.winrmRequests, m.winrmTime, m.winrmAbandon, m.hostIdentity, m.ecxRequests, m.groupOwner, m.queueDepth, m.hookRequests, m.buildInfo,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.buildInfo.WithLabelValues(version).Set(1)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the metrics' own registry (tests read it).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Operation counts a finished operation.
func (m *Metrics) Operation(kind, outcome string, d time.Duration) {
	m.operations.WithLabelValues(kind, outcome).Inc()
	m.operationTime.WithLabelValues(kind).Observe(d.Seconds())
}

// Step records a step's duration.
func (m *Metrics) Step(kind string, d time.Duration) {
	m.stepTime.WithLabelValues(kind).Observe(d.Seconds())
}

var healthValue = map[string]float64{"Normal": 1, "Warning": 2, "Critical": 3}

// Pair sets a pair's state, replication health, degraded reason ("" when
// it is not degraded) and last convergence.
func (m *Metrics) Pair(name, phase, health, degradedReason string, convergedAt time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if phase != string(store.PhaseDegraded) {
		degradedReason = ""
	}
	if old, ok := m.reasons[name]; ok && old != degradedReason {
		m.pairDegraded.DeleteLabelValues(name, old)
		delete(m.reasons, name)
	}
	if degradedReason != "" {
		m.reasons[name] = degradedReason
		m.pairDegraded.WithLabelValues(name, degradedReason).Set(1)
	}
	for _, s := range PairStates {
		v := 0.0
		if s == phase {
			v = 1
		}
		m.pairState.WithLabelValues(name, s).Set(v)
	}
	m.pairHealth.WithLabelValues(name).Set(healthValue[health])
	if !convergedAt.IsZero() {
		m.lastConverged.WithLabelValues(name).Set(float64(convergedAt.UnixNano()) / 1e9)
	}
}

// ForgetPair drops a pair that is no longer managed.
func (m *Metrics) ForgetPair(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range PairStates {
		m.pairState.DeleteLabelValues(name, s)
	}
	m.pairHealth.DeleteLabelValues(name)
	m.lastConverged.DeleteLabelValues(name)
	if old, ok := m.reasons[name]; ok {
		m.pairDegraded.DeleteLabelValues(name, old)
		delete(m.reasons, name)
	}
}

// QueueDepth sets the queue depth.
func (m *Metrics) QueueDepth(n int) { m.queueDepth.Set(float64(n)) }

// WinRM counts one WinRM command.
func (m *Metrics) WinRM(host, outcome string, d time.Duration) {
	m.winrmRequests.WithLabelValues(host, outcome).Inc()
	m.winrmTime.WithLabelValues(host).Observe(d.Seconds())
}

// WinRMAbandoned counts a WinRM command its caller stopped waiting for.
func (m *Metrics) WinRMAbandoned(host string) { m.winrmAbandon.WithLabelValues(host).Inc() }

// HostIdentity exports whether a host's learned identity matches none of
// its configured names.
func (m *Metrics) HostIdentity(host string, mismatch bool) {
	v := 0.0
	if mismatch {
		v = 1
	}
	m.hostIdentity.WithLabelValues(host).Set(v)
}

// ForgetHostIdentity drops the series of a host no longer configured.
func (m *Metrics) ForgetHostIdentity(host string) { m.hostIdentity.DeleteLabelValues(host) }

// ECX counts one ECX API call.
func (m *Metrics) ECX(cluster, endpoint, outcome string) {
	m.ecxRequests.WithLabelValues(cluster, endpoint, outcome).Inc()
}

// GroupOwner exports the Online owner of a group ("" when none).
func (m *Metrics) GroupOwner(cluster, group, server string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := [2]string{cluster, group}
	if old, ok := m.owners[k]; ok && old != server {
		m.groupOwner.DeleteLabelValues(cluster, group, old)
	}
	if server == "" {
		delete(m.owners, k)
		return
	}
	m.owners[k] = server
	m.groupOwner.WithLabelValues(cluster, group, server).Set(1)
}

// Hook counts a hook call.
func (m *Metrics) Hook(cluster, phase, outcome string) {
	m.hookRequests.WithLabelValues(cluster, phase, outcome).Inc()
}
