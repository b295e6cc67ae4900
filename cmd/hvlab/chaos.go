package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/cmd/hvro/service"
	"github.com/hvro/hvro/test/chaos"
)

// chaosCmd runs seeded chaos against the lab and hvro as a real process
// (docs/RELIABILITY.md).
func chaosCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvlab chaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	seeds := fs.Int("seeds", 3, "how many seeds to run")
	first := fs.Uint64("first", 1, "the first seed of the range")
	seed := fs.Uint64("seed", 0, "run only this seed and print its actions (a replay)")
	steps := fs.Int("steps", 12, "actions per seed")
	pairs := fs.Int("pairs", 8, "protected VMs in the lab")
	parallel := fs.Int("parallel", 2, "seeds at once")
	converge := fs.Duration("converge", 60*time.Second, "bound for convergence after the faults clear (I4)")
	verbose := fs.Bool("v", false, "print every seed's actions, also when it passes")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *seeds < 1 || *steps < 1 || *pairs < 1 || *parallel < 1 {
		fmt.Fprintln(stderr, "hvlab chaos: usage: hvlab chaos [--seeds N] [--first S] [--seed S] [--steps K] [--pairs P] [--parallel J] [-v]")
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(stderr, "hvlab chaos: find this program to run hvro and the ECX scripts: %v\n", err)
		return 1
	}
	list := make([]uint64, 0, *seeds)
	if *seed != 0 {
		list = append(list, *seed)
		*verbose = true
	} else {
		for i := 0; i < *seeds; i++ {
			list = append(list, *first+uint64(i))
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	reports := make([]chaos.Report, len(list))
	var mu sync.Mutex
	sem := make(chan struct{}, *parallel)
	var wg sync.WaitGroup
	failed := 0
	for i, s := range list {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // interrupted: start no more seeds
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			rep, err := chaos.Run(ctx, chaos.Options{Seed: s, Steps: *steps, Pairs: *pairs, Binary: self, Converge: *converge})
			mu.Lock()
			defer mu.Unlock()
			reports[i] = rep
			if ctx.Err() != nil {
				fmt.Fprintf(stdout, "seed %d: interrupted\n", s)
				return
			}
			if err != nil {
				failed++
				fmt.Fprintf(stdout, "seed %d: could not run: %v (files in %s)\n", s, err, rep.Dir)
				return
			}
			if rep.Failed() {
				failed++
			}
			printReport(stdout, rep, *verbose || rep.Failed())
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		fmt.Fprintln(stdout, "interrupted: no verdict")
		return 1
	}
	printSummary(stdout, reports, time.Since(start))
	if failed > 0 {
		return 1
	}
	return 0
}

func printReport(w io.Writer, r chaos.Report, actions bool) {
	status := "ok"
	if r.Failed() {
		status = fmt.Sprintf("FAILED: %d violation(s)", len(r.Violations))
	}
	fmt.Fprintf(w, "seed %d: %s (%d actions, %d refused; converged %s after the faults cleared; %s)\n",
		r.Seed, status, len(r.Actions), len(r.Refused), r.Convergence.Round(10*time.Millisecond), r.Duration.Round(100*time.Millisecond))
	if actions {
		for i, a := range r.Actions {
			fmt.Fprintf(w, "  %2d. %s\n", i+1, a)
		}
		for _, x := range r.Refused {
			fmt.Fprintf(w, "  refused: %s\n", x)
		}
	}
	if r.Failed() {
		fmt.Fprintf(w, "  first violation: %s\n", r.Violations[0])
		for _, v := range r.Violations[1:] {
			fmt.Fprintf(w, "  then: %s\n", v)
		}
		fmt.Fprintf(w, "  files (hvro's log, config, store): %s\n  replay: go run ./cmd/hvlab chaos --seed %d --steps %d --pairs %d\n",
			r.Dir, r.Seed, len(r.Actions), r.Pairs)
	}
}

func printSummary(w io.Writer, reports []chaos.Report, took time.Duration) {
	faults := map[chaos.Kind]int{}
	actions, violations, failed := 0, 0, 0
	var longest time.Duration
	for _, r := range reports {
		actions += len(r.Actions)
		violations += len(r.Violations)
		if r.Failed() {
			failed++
		}
		longest = max(longest, r.Convergence)
		for k, n := range r.Faults {
			faults[k] += n
		}
	}
	var fk []string
	for k, n := range faults {
		fk = append(fk, fmt.Sprintf("%s %d", k, n))
	}
	slices.Sort(fk)
	fmt.Fprintf(w, "\n%d seeds, %d actions, %d violations (%d seeds failed); longest convergence after faults %s; took %s\nfaults: %s\n",
		len(reports), actions, violations, failed, longest.Round(10*time.Millisecond), took.Round(time.Second), strings.Join(fk, ", "))
}

// serveCmd is hvro serve inside hvlab, so that the chaos runner can start
// (and kill -9) hvro as a process of its own without a separate binary.
func serveCmd(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvlab serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "hvro's configuration file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hvlab serve: usage: hvlab serve --config hvro.yaml")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "hvlab serve: %s is not a valid configuration:\n%v\n", *path, err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return service.Run(ctx, cfg, *path, service.NewLogger(cfg, stderr), "hvlab", make(chan os.Signal))
}
