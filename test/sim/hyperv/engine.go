package hyperv

import (
	"strings"
	"time"

	"github.com/hvro/hvro/test/sim/hyperv/ps"
)

// Tick advances time-driven replication transitions. The world also ticks
// on every cmdlet and storage event; the lab calls Tick periodically so
// /sim/state shows a live picture even when nobody runs commands.
func (w *World) Tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tick()
}

// tick runs one evaluation of every replication relationship. Caller holds mu.
func (w *World) tick() {
	now := w.now()
	t := w.cfg.Timing
	for _, h := range w.sortedHosts() {
		if !h.up {
			continue
		}
		for _, reg := range sortedRegs(h) {
			if reg.view != viewLive || w.settling(reg) {
				continue
			}
			cfg := w.config(h, reg)
			if cfg == nil || cfg.Rep == nil {
				continue
			}
			switch cfg.Rep.Mode {
			case Primary:
				w.tickPrimary(h, cfg, now, t)
			case Replica:
				r := cfg.Rep
				if r.State == Replicating && !r.LastReplication.IsZero() && now.Sub(r.LastReplication) > t.ErrorAfter+t.Cycle {
					r.Health = Warning
				}
			}
		}
	}
}

func (w *World) tickPrimary(h *Host, cfg *VMConfig, now time.Time, t Timing) {
	r := cfg.Rep
	switch r.State {
	case Replicating, InitialReplicationInProgress, Resynchronizing:
	case Error:
		if t.ResyncRequiredAfter > 0 && now.Sub(r.errorSince) >= t.ResyncRequiredAfter {
			r.State = WaitingForStartResynchronize
		}
		return
	default:
		return
	}
	rcfg, why := w.replicaFor(h, cfg)
	if why != "" {
		if r.failSince.IsZero() {
			r.failSince = now
		}
		r.Health = Warning
		if now.Sub(r.failSince) >= t.ErrorAfter {
			r.State, r.Health, r.errorSince = Error, Critical, now
			r.errors++
		}
		r.missed++
		return
	}
	r.failSince = time.Time{}
	rr := rcfg.Rep
	switch r.State {
	case InitialReplicationInProgress, Resynchronizing:
		r.Health = Normal
		if now.Sub(r.phaseStart) >= r.phaseDur {
			r.State, r.LastReplication = Replicating, now
			rr.State, rr.Health, rr.LastReplication = Replicating, Normal, now
			r.successful++
		}
	case Replicating:
		r.Health = Normal
		if now.Sub(r.LastReplication) >= t.Cycle {
			r.LastReplication = now
			rr.LastReplication = now
			r.successful++
		}
		if rr.State == Replicating {
			rr.Health = Normal
		}
	}
}

// replicaFor finds the live replica half a primary half replicates to; why
// is empty when replication can flow, otherwise the catalogue error name.
func (w *World) replicaFor(h *Host, cfg *VMConfig) (*VMConfig, string) {
	r := cfg.Rep
	if !h.hasName(r.PrimaryServer) {
		// The configuration was registered on another host after the
		// relationship was made: the replica server expects the old one.
		return nil, "replica_not_accepting"
	}
	rh := w.hostByName(r.ReplicaServer)
	if rh == nil {
		return nil, "replica_unresolved"
	}
	if !rh.up {
		return nil, "replica_unreachable"
	}
	if !rh.accepts(h, r.Auth, r.Port) {
		return nil, "replica_not_accepting"
	}
	reg := rh.regs[strings.ToLower(cfg.ID)]
	if reg == nil || reg.view != viewLive || w.settling(reg) {
		return nil, "replica_unreachable"
	}
	rcfg := w.config(rh, reg)
	if rcfg == nil || rcfg.Rep == nil || rcfg.Rep.Mode != Replica || !h.hasName(rcfg.Rep.PrimaryServer) {
		return nil, "replica_unreachable"
	}
	return rcfg, ""
}

// accepts reports whether this host, as a Replica server, takes replication
// from primary with the given authentication and port.
func (h *Host) accepts(primary *Host, auth string, port int) bool {
	rs := h.repServer
	if !rs.Enabled {
		return false
	}
	switch {
	case strings.EqualFold(auth, "Kerberos"):
		if !(strings.EqualFold(rs.AllowedAuth, "Kerberos") || strings.EqualFold(rs.AllowedAuth, "CertificateAndKerberos")) || port != rs.KerberosPort {
			return false
		}
	case strings.EqualFold(auth, "Certificate"):
		if !(strings.EqualFold(rs.AllowedAuth, "Certificate") || strings.EqualFold(rs.AllowedAuth, "CertificateAndKerberos")) || port != rs.CertificatePort {
			return false
		}
	default:
		return false
	}
	if rs.AllowAnyServer {
		return true
	}
	for _, s := range rs.AuthorizedServer {
		if s == "*" || primary.hasName(s) {
			return true
		}
	}
	return false
}

// connectError turns a replicaFor reason into the error Enable- or
// Start-VMInitialReplication reports.
func connectError(why string, r *Replication) *ps.ErrorRecord {
	switch why {
	case "replica_unresolved":
		return hvError(why, r.ReplicaServer)
	case "replica_not_accepting":
		return hvError(why, r.ReplicaServer, r.Auth, r.Port)
	}
	return hvError("replica_unreachable", r.ReplicaServer, r.Port)
}
