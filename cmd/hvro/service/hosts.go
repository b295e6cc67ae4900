package service

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/orchestrator"
	"github.com/hvro/hvro/orchestrator/metrics"
	"github.com/hvro/hvro/replica"
)

// winrmHost builds the WinRM driver of one host.
func winrmHost(h config.Host, names HostNames, m *metrics.Metrics, log *slog.Logger) (orchestrator.Host, error) {
	w := h.WinRM
	d, err := replica.New(h.Server, replica.Config{
		Endpoint: h.URL, Username: w.Username, Password: w.Password.Value(), Auth: w.Auth,
		InsecureSkipVerify: w.InsecureSkipVerify, CAFile: w.CAFile, Timeout: w.Timeout,
		MaxConcurrent: w.MaxConcurrentPerHost, ShellIdleTimeout: w.ShellIdleTimeout, Logger: log,
		OnRequest:   func(host, outcome string, d time.Duration) { m.WinRM(host, outcome, d) },
		OnAbandoned: m.WinRMAbandoned,
	})
	if err != nil {
		return nil, err
	}
	return replicaHost{d: d, key: hostKey(h.Server), names: names}, nil
}

func isTransient(err error) bool { return replica.IsTransient(err) }

// isAbandoned: the driver stopped waiting for a command that may still
// run on the host (its shell is deleted in the background).
func isAbandoned(err error) bool {
	r := replica.Reason(err)
	return r == replica.ReasonTimeout || r == replica.ReasonCanceled
}

// permanentReason names a driver error that retrying cannot cure (the
// credentials were refused, the endpoint does not speak WinRM, the VM is
// not there) by the driver's stable reason word.
func permanentReason(err error) (string, bool) {
	if !replica.IsPermanent(err) {
		return "", false
	}
	return cmp.Or(replica.Reason(err), "permanent"), true
}

// stopMode is the driver's StopMode for a stop step's mode ("shutdown",
// "force", "turnoff"): "" is force, a shutdown through the guest that
// ignores unsaved application data, which is what every stop step did
// before modes existed. An unknown mode passes through, so the driver
// refuses it with an error naming it.
func stopMode(mode string) replica.StopMode {
	if mode == "" {
		return replica.StopForce
	}
	return replica.StopMode(mode)
}

// stopVM stops a VM and says how, for the step's journal line and the
// hook's event.
func stopVM(ctx context.Context, d *replica.Driver, ref replica.VMRef, mode replica.StopMode) (string, error) {
	r, err := d.StopVM(ctx, ref, mode)
	switch {
	case err != nil:
		return "", err
	case r.AlreadyOff:
		return "already off", nil
	case mode == replica.StopTurnOff:
		return "turned off (power cut, the guest did not shut down)", nil
	case mode == replica.StopForce:
		return "shut down (forced)", nil
	}
	return "shut down", nil
}

// Close closes the WinRM driver (Service.Shutdown, after the controller
// stopped): it waits a few seconds for shells of cancelled commands to be
// deleted.
func (h replicaHost) Close() error { return h.d.Close() }

// replicaHost adapts the WinRM driver to the orchestrator's two verbs.
type replicaHost struct {
	d     *replica.Driver
	key   string // this host's key
	names HostNames
}

// Identity reads (once, then from the driver's cache) how the host names
// itself.
func (h replicaHost) Identity(ctx context.Context) (replica.Identity, error) {
	return h.d.Identity(ctx)
}

// Inspect reads the VM and its replication, with the server names Hyper-V
// reports translated into host keys (see HostNames). The host's own
// identity is learned after its first successful inspection: it is up
// then, and the names other hosts report for it resolve from then on.
func (h replicaHost) Inspect(ctx context.Context, vm string) (orchestrator.HostView, error) {
	v, err := h.d.Inspect(ctx, replica.VMRef{Name: vm})
	if err != nil {
		return orchestrator.HostView{}, err
	}
	if id, err := h.d.Identity(ctx); err == nil {
		h.names.Learned(h.key, id)
	}
	var out orchestrator.HostView
	if v.VM != nil {
		out.VM = &orchestrator.VMInfo{State: v.VM.State, Running: v.VM.Running, Critical: v.VM.Critical}
	}
	if r := v.Replication; r != nil {
		out.Rep = &orchestrator.RepInfo{Mode: r.Mode, State: r.State, Health: r.Health,
			Primary: h.names.Key(ctx, r.PrimaryFQDN), Replica: h.names.Key(ctx, r.ReplicaFQDN), LastReplication: r.LastReplication}
	}
	return out, nil
}

func (h replicaHost) Run(ctx context.Context, vm string, s orchestrator.Step, set orchestrator.Settings) (string, error) {
	ref := replica.VMRef{Name: vm}
	rs := replica.Settings{Port: set.Port, Auth: set.Auth, Thumbprint: set.Thumbprint, FrequencySec: set.FrequencySec, Compression: set.Compression}
	switch s.Kind {
	case orchestrator.StepStartVM:
		r, err := h.d.StartVM(ctx, ref)
		switch {
		case err != nil:
			return "", err
		case r.AlreadyRunning:
			return "already running", nil
		case r.DiscardedSavedState:
			return "discarded a saved state whose files were gone", nil
		}
		return "", nil
	case orchestrator.StepStopVM:
		// A step without a mode is a forced shutdown through the guest,
		// as before modes existed (see stopMode); an evacuation asks for
		// each mode in turn.
		return stopVM(ctx, h.d, ref, stopMode(string(s.Mode)))
	case orchestrator.StepRegister:
		r, err := h.d.Register(ctx, ref, s.ConfigPath)
		switch {
		case err != nil:
			return "", err
		case r.AlreadyRegistered:
			return "already registered", nil
		case len(r.Repaired) > 0:
			return fmt.Sprintf("repaired incompatibilities %v", r.Repaired), nil
		}
		return "", nil
	case orchestrator.StepRemove:
		removed, err := h.d.RemoveReplication(ctx, ref)
		if err == nil && !removed {
			return "was not enabled", nil
		}
		return "", err
	case orchestrator.StepEnableReplica:
		return "", h.d.EnableReplica(ctx, ref)
	case orchestrator.StepEnablePrimary:
		return "", h.d.EnablePrimary(ctx, ref, h.names.Peer(s.Peer), rs)
	case orchestrator.StepInitial:
		return "", h.d.StartInitialReplication(ctx, ref, s.UseBackup)
	case orchestrator.StepResume:
		return "", h.d.ResumeReplication(ctx, ref, s.Resync)
	case orchestrator.StepPrepareFailover:
		return "", h.d.PrepareFailover(ctx, ref)
	case orchestrator.StepFailover:
		return "", h.d.Failover(ctx, ref)
	case orchestrator.StepCancelFailover:
		return "", h.d.CancelFailover(ctx, ref)
	case orchestrator.StepCompleteFailover:
		return "", h.d.CompleteFailover(ctx, ref)
	case orchestrator.StepReverse:
		return "", h.d.Reverse(ctx, ref, h.names.Peer(s.Peer), rs)
	}
	return "", fmt.Errorf("step %s has no WinRM action", s.Kind)
}
