package chaos

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hvro/hvro/test/gobuild"
)

// hvlabBin runs hvro (hvlab serve) and the ECX scripts (hvlab hook).
var hvlabBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hvro-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hvlabBin, err = gobuild.Build(dir, "github.com/hvro/hvro/cmd/hvlab")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build hvlab:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// ciSeeds are the seeds every change runs; the long runs are in
// docs/RELIABILITY.md.
var ciSeeds = []uint64{1, 2, 3}

// TestChaosSeeds runs a few seeds end to end: the lab, hvro as a real
// process, the seeds' faults; no invariant may break.
func TestChaosSeeds(t *testing.T) {
	gobuild.DeclareSources()
	var wg sync.WaitGroup
	reports := make([]Report, len(ciSeeds))
	errs := make([]error, len(ciSeeds))
	for i, seed := range ciSeeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = Run(context.Background(), Options{Seed: seed, Steps: 10, Pairs: 4, Binary: hvlabBin})
		}()
	}
	wg.Wait()
	for i, r := range reports {
		if errs[i] != nil {
			t.Errorf("seed %d could not run: %v (files in %s)", r.Seed, errs[i], r.Dir)
			continue
		}
		var b strings.Builder
		for j, a := range r.Actions {
			fmt.Fprintf(&b, "\n  %2d. %s", j+1, a)
		}
		if r.Failed() {
			t.Errorf("seed %d: %d violations; first: %s\nactions:%s\nfiles: %s", r.Seed, len(r.Violations), r.Violations[0], b.String(), r.Dir)
			continue
		}
		t.Logf("seed %d: ok in %s, converged %s after the faults cleared; actions:%s", r.Seed, r.Duration.Round(100*time.Millisecond), r.Convergence.Round(10*time.Millisecond), b.String())
	}
}

// TestActionsReplay: a seed's actions are a pure function of the seed, the
// step count and the estate; another seed draws other actions.
func TestActionsReplay(t *testing.T) {
	e := newEstate(8)
	a, b := generate(42, 40, e), generate(42, 40, e)
	if !slices.EqualFunc(a, b, func(x, y Action) bool { return x.String() == y.String() }) {
		t.Fatal("seed 42 drew two different action lists")
	}
	if c := generate(43, 40, e); slices.EqualFunc(a, c, func(x, y Action) bool { return x.String() == y.String() }) {
		t.Fatal("seeds 42 and 43 drew the same actions")
	}
	kinds := map[Kind]bool{}
	for seed := uint64(1); seed <= 50; seed++ {
		for _, x := range generate(seed, 12, e) {
			kinds[x.Kind] = true
		}
	}
	for _, w := range weights {
		if !kinds[w.kind] {
			t.Errorf("50 seeds never drew %s", w.kind)
		}
	}
}
