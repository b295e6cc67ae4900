package store

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// childEnv selects a child-process role when the test binary re-executes
// itself (lock holder, crash writer); see TestMain.
const childEnv = "HVRO_STORE_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "hold-lock":
		os.Exit(childHoldLock(os.Getenv("HVRO_STORE_TEST_PATH")))
	case "crash-writer":
		os.Exit(childCrashWriter(os.Getenv("HVRO_STORE_TEST_PATH")))
	default:
		fmt.Fprintln(os.Stderr, "unknown child role", os.Getenv(childEnv))
		os.Exit(2)
	}
}

var t0 = time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func openTemp(t testing.TB, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "data", "hvro.db")
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, path
}

func mustUpdate(t testing.TB, s *Store, fn func(Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t testing.TB, s *Store, fn func(Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func samplePair(name string) Pair {
	return Pair{
		Name: name,
		Config: PairConfig{
			VMName:  name,
			Primary: Side{Cluster: "cluster1", Group: "failover-" + name, VMConfigPath: `T:\VMs\Virtual Machines\C520D71E.vmcx`},
			Replica: Side{Cluster: "cluster2", Group: "failover-" + name + "-r", VMConfigPath: `T:\VMs\Hyper-V Replica\Virtual Machines\C520D71E.vmcx`},
			Replication: ReplicationConfig{Port: 80, Authentication: "Kerberos", Frequency: 300 * time.Second,
				Compression: true, Initial: "use_existing"},
		},
		PrimaryCluster:    "cluster1",
		Generation:        7,
		ActivePrimaryHost: "node1",
		ActiveReplicaHost: "node3",
		Replication: ReplicationStatus{State: "Replicating", Health: "Normal", PrimaryServer: "node1.lab.local",
			ReplicaServer: "node3.lab.local", LastReplication: at(-30), ObservedAt: at(0)},
		Phase:           "Degraded",
		Paused:          true,
		Degraded:        &Degraded{Since: at(-60), Reason: "config_not_accessible", Error: "Hyper-V: configuration was not accessible"},
		LastOpID:        3,
		LastConvergedAt: at(-120),
		UpdatedAt:       at(1),
	}
}

func sampleObservation(cluster, group string) Observation {
	return Observation{
		Cluster: cluster, Group: group, Status: "Online", Owner: "node2", Source: SourceHook,
		Endpoint: "http://192.0.2.10:29009",
		Hook:     &HookInfo{Phase: "start", Event: "FAILOVER", Factor: "SERVERDOWN", Server: "node2", Disk: "T1"},
		Err:      "previous poll: connection refused",
		At:       at(2),
	}
}

func sampleOperation(id uint64, pair string, state OpState) Operation {
	return Operation{
		ID: id, Pair: pair, Kind: "reconcile", Trigger: "hook cluster1/failover1 start", Generation: 7, State: state,
		Plan: []Step{
			{Index: 0, Kind: "remove-replication", Host: "node1", Summary: "Remove-VMReplication -VMName vm1",
				Started: at(3), Ended: at(4), Outcome: OutcomeOK, Attempts: 1},
			{Index: 1, Kind: "enable-replica", Host: "node3", Summary: "Enable-VMReplication ... -AsReplica",
				Started: at(4), Outcome: OutcomeRunning, Attempts: 2, Error: "transient: WinRM timeout"},
			{Index: 2, Kind: "start-vm", Host: "node2", Summary: "Start-VM vm1", Outcome: OutcomePending},
		},
		Started: at(3),
	}
}

// putOps stores n operations spread over pairs, round robin, with the state
// given by stateOf(i); it returns their ids in creation order.
func putOps(t testing.TB, s *Store, n int, pairs []string, stateOf func(i int) OpState) []uint64 {
	t.Helper()
	var ids []uint64
	mustUpdate(t, s, func(tx Tx) error {
		for i := range n {
			id, err := tx.NextOperationID()
			if err != nil {
				return err
			}
			if err := tx.PutOperation(sampleOperation(id, pairs[i%len(pairs)], stateOf(i))); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return nil
	})
	return ids
}

// dump is every record of a store, for comparing two stores.
type dump struct {
	Pairs        []Pair
	Observations []Observation
	Operations   []Operation
	Events       []Event
	NextOpID     uint64 // the id NextOperationID would hand out next (operations bucket sequence + 1)
}

func dumpStore(t testing.TB, s *Store) dump {
	t.Helper()
	var d dump
	mustView(t, s, func(tx Tx) error {
		var err error
		if d.Pairs, err = tx.Pairs(); err != nil {
			return err
		}
		if d.Observations, err = tx.Observations(); err != nil {
			return err
		}
		if d.Operations, err = tx.Operations(OpFilter{}); err != nil {
			return err
		}
		if d.Events, err = tx.Events(EventFilter{}); err != nil {
			return err
		}
		b, err := tx.(*boltTx).bucket(bucketOperations)
		if err != nil {
			return err
		}
		d.NextOpID = b.Sequence() + 1
		return nil
	})
	return d
}

func assertEqual[T any](t testing.TB, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %+v\n want %+v", what, got, want)
	}
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func assertUntouched(t testing.TB, path string, before []byte) {
	t.Helper()
	if after := readFile(t, path); !bytes.Equal(before, after) {
		t.Errorf("%s changed: %d bytes before, %d after", path, len(before), len(after))
	}
}

func wantErrIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v; want one matching %v", err, target)
	}
}
