package replica

import (
	"context"
	"fmt"
	"time"
)

// VMRef names a VM on a host: its name in Hyper-V, matched exactly (no
// wildcards; names may contain [ ] * ?) and case-insensitively.
type VMRef struct{ Name string }

// StartResult says what StartVM found and did.
type StartResult struct {
	AlreadyRunning bool
	// DiscardedSavedState: Start-VM failed because the saved-state files
	// were gone (the host had crashed), so the saved state was removed and
	// the VM started fresh.
	DiscardedSavedState bool
}

// RegisterResult says what Register found and did.
type RegisterResult struct {
	AlreadyRegistered bool
	// Repaired lists the Compare-VM incompatibilities (message ids) fixed
	// before the import: 40004 saved-state file and 40006 memory file
	// missing.
	Repaired []int
}

// Inspect reads the VM and its replication on the host in one command.
// A VM that is not registered gives a View with a nil VM, not an error.
func (d *Driver) Inspect(ctx context.Context, vm VMRef) (View, error) {
	c := call{op: "inspect", vm: vm.Name}
	script, err := inspectScript(vm.Name)
	if err != nil {
		return View{}, d.invalid(c, err)
	}
	var v View
	err = d.run(ctx, c, script, func(obj []byte) (err error) {
		v, err = parseInspect(obj)
		return err
	})
	return v, err
}

// StartVM starts the VM; a running VM is left alone.
func (d *Driver) StartVM(ctx context.Context, vm VMRef) (StartResult, error) {
	c := call{op: "start VM", vm: vm.Name}
	a, err := d.action(ctx, c, bodyStartVM)
	if err != nil {
		return StartResult{}, err
	}
	return StartResult{AlreadyRunning: a.Result == resultAlready, DiscardedSavedState: a.Discarded}, nil
}

// Identity is how a host names itself.
type Identity struct {
	// ComputerName is the Windows computer name ("NODE1").
	ComputerName string
	// FQDN is the host's fully qualified name ("NODE1.corp.example"), the
	// name Hyper-V Replica reports for it as a primary server.
	FQDN string
}

// identityRetry is how long a failed Identity is answered from memory, so
// that callers asking on every inspection do not double the commands to a
// host that cannot answer it.
const identityRetry = 30 * time.Second

// Identity returns the host's own names (Get-VMHost). The first success is
// kept for the driver's life: a host does not rename itself while hvro
// runs (a reload builds a new driver, which asks again). Concurrent
// callers share one command; a failure is repeated without a command for
// identityRetry.
func (d *Driver) Identity(ctx context.Context) (Identity, error) {
	select {
	case d.idLock <- struct{}{}:
	case <-ctx.Done():
		reason, msg, err := ctxError(ctx, ctx.Err(), d.timeout.String())
		return Identity{}, call{op: "read identity"}.fail(d, ErrTransient, reason, msg, err)
	}
	defer func() { <-d.idLock }()
	switch {
	case d.identity != nil:
		return *d.identity, nil
	case d.idErr != nil && time.Since(d.idFailed) < identityRetry:
		return Identity{}, d.idErr
	}
	var id Identity
	err := d.run(ctx, call{op: "read identity"}, identityScript, func(obj []byte) (err error) {
		id, err = parseIdentity(obj)
		return err
	})
	if err != nil {
		// Keep only what the host answered: the caller's own deadline or
		// cancel says nothing about the host.
		if ctx.Err() == nil {
			d.idErr, d.idFailed = err, time.Now()
		}
		return Identity{}, err
	}
	d.identity, d.idErr = &id, nil
	return id, nil
}

// StopMode is how StopVM stops a VM, from the gentlest to the hardest;
// an evacuation escalates through them in this order.
type StopMode string

const (
	// StopShutdown asks the guest to shut down (Stop-VM): it may refuse,
	// e.g. when it is locked or has unsaved work.
	StopShutdown StopMode = "shutdown"
	// StopForce asks the guest to shut down regardless of unsaved
	// application data (Stop-VM -Force; Hyper-V gives the guest up to five
	// minutes). A guest whose Shutdown integration service does not answer
	// still refuses.
	StopForce StopMode = "force"
	// StopTurnOff cuts the VM's power at once (Stop-VM -TurnOff): no guest
	// involved, unsaved data is lost, it always works while the host can
	// reach the VM's storage.
	StopTurnOff StopMode = "turnoff"
)

// StopModes lists the modes in escalation order.
var StopModes = []StopMode{StopShutdown, StopForce, StopTurnOff}

// StopResult says what StopVM found and did.
type StopResult struct {
	// AlreadyOff: the VM was Off or Saved (also in their Critical
	// variants), so nothing was done.
	AlreadyOff bool
}

// StopVM stops the VM the way mode says; a VM that is off or saved is left
// alone. A guest that refuses to shut down gives a permanent error with
// reason shutdown_refused (retrying the same mode will not help; a harder
// one may).
func (d *Driver) StopVM(ctx context.Context, vm VMRef, mode StopMode) (StopResult, error) {
	c := call{op: "stop VM (" + string(mode) + ")", vm: vm.Name}
	body, ok := stopBodies[mode]
	if !ok {
		return StopResult{}, d.invalid(c, fmt.Errorf("stop mode %q: must be %q, %q or %q", mode, StopShutdown, StopForce, StopTurnOff))
	}
	a, err := d.action(ctx, c, body)
	if err != nil {
		return StopResult{}, err
	}
	return StopResult{AlreadyOff: a.Result == resultAlready}, nil
}

// Register registers the VM in place from its configuration file
// (Import-VM -Path). A configuration that references saved-state files
// that are gone is repaired first; other incompatibilities are a
// permanent error listing them. A VM of that name already registered is
// left alone.
func (d *Driver) Register(ctx context.Context, vm VMRef, configPath string) (RegisterResult, error) {
	c := call{op: "register", vm: vm.Name}
	script, err := registerScript(vm.Name, configPath)
	if err != nil {
		return RegisterResult{}, d.invalid(c, err)
	}
	var r RegisterResult
	err = d.run(ctx, c, script, func(obj []byte) error {
		a, err := parseAction(obj)
		if err != nil {
			return err
		}
		r.AlreadyRegistered = a.Result == resultAlready
		r.Repaired, err = parseIDs(string(a.Repaired))
		return err
	})
	if err != nil {
		return RegisterResult{}, err
	}
	return r, nil
}

// EnableReplica makes the VM a Replica waiting for initial replication
// (Enable-VMReplication -AsReplica); nothing happens when it already is a
// Replica waiting or replicating.
func (d *Driver) EnableReplica(ctx context.Context, vm VMRef) error {
	_, err := d.action(ctx, call{op: "enable replica", vm: vm.Name}, bodyEnableReplica)
	return err
}

// EnablePrimary makes the VM a Primary replicating to replicaHost;
// nothing happens when it already replicates to that host.
func (d *Driver) EnablePrimary(ctx context.Context, vm VMRef, replicaHost string, s Settings) error {
	return d.settingsAction(ctx, call{op: "enable primary", vm: vm.Name}, replicaHost, s, bodyEnablePrimary)
}

// StartInitialReplication starts the initial copy, from the replica's
// existing copy with useBackup (Start-VMInitialReplication -UseBackup) or
// over the network; nothing happens when it runs or ran already.
func (d *Driver) StartInitialReplication(ctx context.Context, vm VMRef, useBackup bool) error {
	body := bodyStartInitial
	if useBackup {
		body = bodyStartInitialBackup
	}
	_, err := d.action(ctx, call{op: "start initial replication", vm: vm.Name}, body)
	return err
}

// ResumeReplication resumes suspended or failed replication, with a
// resynchronization when resync is set; nothing happens when the VM
// replicates or resynchronizes already.
func (d *Driver) ResumeReplication(ctx context.Context, vm VMRef, resync bool) error {
	body := bodyResume
	if resync {
		body = bodyResumeResync
	}
	_, err := d.action(ctx, call{op: "resume replication", vm: vm.Name}, body)
	return err
}

// RemoveReplication removes this host's half of the relationship; removed
// is false when replication was not enabled.
func (d *Driver) RemoveReplication(ctx context.Context, vm VMRef) (removed bool, err error) {
	a, err := d.action(ctx, call{op: "remove replication", vm: vm.Name}, bodyRemove)
	if err != nil {
		return false, err
	}
	return a.Result == resultDone, nil
}

// PrepareFailover runs Start-VMFailover -Prepare on the primary (the VM
// must be off): the last changes go to the replica.
func (d *Driver) PrepareFailover(ctx context.Context, vm VMRef) error {
	_, err := d.action(ctx, call{op: "prepare failover", vm: vm.Name}, bodyPrepareFailover)
	return err
}

// Failover runs Start-VMFailover on the replica.
func (d *Driver) Failover(ctx context.Context, vm VMRef) error {
	_, err := d.action(ctx, call{op: "fail over", vm: vm.Name}, bodyFailover)
	return err
}

// CancelFailover runs Stop-VMFailover where a failover stopped half-way:
// on a primary left prepared, or on a replica left failed over and
// waiting for completion; elsewhere nothing happens.
func (d *Driver) CancelFailover(ctx context.Context, vm VMRef) error {
	_, err := d.action(ctx, call{op: "cancel failover", vm: vm.Name}, bodyCancelFailover)
	return err
}

// CompleteFailover runs Complete-VMFailover on the failed-over replica.
func (d *Driver) CompleteFailover(ctx context.Context, vm VMRef) error {
	_, err := d.action(ctx, call{op: "complete failover", vm: vm.Name}, bodyCompleteFailover)
	return err
}

// Reverse makes the failed-over replica the Primary replicating to
// replicaHost (Set-VMReplication -Reverse); nothing happens when it
// already does.
func (d *Driver) Reverse(ctx context.Context, vm VMRef, replicaHost string, s Settings) error {
	return d.settingsAction(ctx, call{op: "reverse replication", vm: vm.Name}, replicaHost, s, bodyReverse)
}

func (d *Driver) action(ctx context.Context, c call, body string) (actionJSON, error) {
	script, err := actionScript(c.vm, body)
	if err != nil {
		return actionJSON{}, d.invalid(c, err)
	}
	return d.runAction(ctx, c, script)
}

func (d *Driver) settingsAction(ctx context.Context, c call, replicaHost string, s Settings, body string) error {
	script, err := settingsScript(c.vm, replicaHost, s, body)
	if err != nil {
		return d.invalid(c, err)
	}
	_, err = d.runAction(ctx, c, script)
	return err
}

func (d *Driver) runAction(ctx context.Context, c call, script string) (actionJSON, error) {
	var a actionJSON
	err := d.run(ctx, c, script, func(obj []byte) (err error) {
		a, err = parseAction(obj)
		return err
	})
	return a, err
}

// invalid is the error for arguments refused before anything is sent.
func (d *Driver) invalid(c call, err error) error {
	return c.fail(d, ErrPermanent, ReasonInvalidArgument, err.Error(), nil)
}
