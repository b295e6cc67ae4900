package store

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCrashSafety is invariant I5 for the store: a process killed with
// SIGKILL at any instant - while creating the file, opening it, in the
// middle of a commit - leaves a store that opens, passes Check, decodes
// every record, and holds at least every commit the process reported.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>7))
	var path string
	var committed uint64 // highest generation any child reported as committed
	total := 0
	const iterations = 12
	for i := range iterations {
		if i%4 == 0 {
			// A fresh data dir, so kills also land while the file is created.
			path = filepath.Join(t.TempDir(), "data", "hvro.db")
			total += int(committed)
			committed = 0
		}
		child := exec.Command(os.Args[0], "-test.run=^$")
		child.Env = append(os.Environ(), childEnv+"=crash-writer", "HVRO_STORE_TEST_PATH="+path)
		child.Stderr = os.Stderr
		stdout, err := child.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string)
		go func() {
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()

		// Half the kills land at a random instant after the child starts
		// opening (creating, checking, migrating, first commits); the
		// others after a random number of commits, i.e. inside the next.
		var deadline <-chan time.Time
		killAfter := time.Duration(0)
		waitCommits := 0
		if i%2 == 0 {
			killAfter = time.Duration(rng.IntN(30_000)) * time.Microsecond
		} else {
			waitCommits = 1 + rng.IntN(30)
		}
		timeout := time.After(20 * time.Second)
		seen := 0
	wait:
		for {
			select {
			case <-deadline:
				break wait
			case <-timeout:
				_ = child.Process.Kill()
				t.Fatalf("iteration %d: child made %d commits in 20s, waiting for %d", i, seen, waitCommits)
			case line, ok := <-lines:
				if !ok {
					_ = child.Wait()
					t.Fatalf("iteration %d: child exited early after %d commits", i, seen)
				}
				if line == "opening" {
					if waitCommits == 0 {
						deadline = time.After(killAfter)
					}
					continue
				}
				gen, err := strconv.ParseUint(strings.TrimPrefix(line, "committed "), 10, 64)
				if err != nil {
					t.Fatalf("iteration %d: child said %q", i, line)
				}
				committed = max(committed, gen)
				seen++
				if waitCommits > 0 && seen >= waitCommits {
					break wait
				}
			}
		}
		if err := child.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		for line := range lines { // lines printed before the kill still count
			if line == "opening" {
				continue
			}
			if gen, err := strconv.ParseUint(strings.TrimPrefix(line, "committed "), 10, 64); err == nil {
				committed = max(committed, gen)
			}
		}
		_ = child.Wait()
		t.Logf("iteration %d: killed %v after opening began, after %d commits; %d committed in total", i, killAfter, seen, committed)
		verifyAfterCrash(t, path, committed)
	}
	if total+int(committed) == 0 {
		t.Error("no child ever committed: the test exercised nothing")
	}
}

func verifyAfterCrash(t *testing.T, path string, committed uint64) {
	t.Helper()
	if _, err := os.Stat(path); os.IsNotExist(err) {
		if committed > 0 {
			t.Fatalf("store vanished after %d commits", committed)
		}
		return // killed before the store was published: nothing to check
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after kill -9: %v", err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("Check after kill -9: %v", err)
	}
	d := dumpStore(t, s) // every record decodes
	var gen uint64
	if len(d.Pairs) > 0 {
		gen = d.Pairs[0].Generation
	}
	if gen < committed {
		t.Fatalf("pair generation %d after kill -9; the child reported %d committed", gen, committed)
	}
	// Each commit added one operation and one event: the journal agrees
	// with the pair (atomic transactions).
	if uint64(len(d.Operations)) != gen {
		t.Fatalf("%d operations for generation %d: a transaction was torn", len(d.Operations), gen)
	}
	running := 0
	for _, op := range d.Operations {
		if op.State == OpRunning {
			running++
		}
	}
	if running > 1 {
		t.Fatalf("%d operations running after restart, at most one expected", running)
	}
}

// childCrashWriter plays hvro serve: open, mark interrupted operations,
// then commit pass after pass, printing each commit, until killed.
func childCrashWriter(path string) int {
	fmt.Println("opening")
	s, err := Open(path, Options{EventRetention: 20, LockTimeout: 5 * time.Second})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		return 1
	}
	if _, err := s.MarkInterrupted(time.Now()); err != nil {
		fmt.Fprintln(os.Stderr, "child mark interrupted:", err)
		return 1
	}
	big := strings.Repeat("x", 6000) // overflow pages and file growth
	for n := 0; ; n++ {
		var gen uint64
		err := s.Update(func(tx Tx) error {
			p, err := tx.Pair("vm1")
			if err != nil {
				p = samplePair("vm1")
				p.Generation = 0
			}
			// Finish the previous operation, start the next one.
			if prev, err := tx.Operations(OpFilter{Pair: "vm1", Limit: 1, States: []OpState{OpRunning}}); err == nil && len(prev) == 1 {
				prev[0].State = OpSucceeded
				prev[0].Plan[1].Outcome = OutcomeOK
				prev[0].Plan[2].Outcome = OutcomeOK
				if err := tx.PutOperation(prev[0]); err != nil {
					return err
				}
			}
			id, err := tx.NextOperationID()
			if err != nil {
				return err
			}
			p.Generation++
			p.LastOpID = id
			gen = p.Generation
			if err := tx.PutOperation(sampleOperation(id, "vm1", OpRunning)); err != nil {
				return err
			}
			o := sampleObservation("cluster1", fmt.Sprint("g", n%7))
			if n%5 == 0 {
				o.Err = big
			}
			if err := tx.PutObservation(o); err != nil {
				return err
			}
			if _, err := tx.AppendEvent(Event{Pair: "vm1", Op: fmt.Sprint(id), Kind: "pass", Message: big[:n%3000]}); err != nil {
				return err
			}
			return tx.PutPair(p)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "child update:", err)
			return 1
		}
		fmt.Printf("committed %d\n", gen)
	}
}
