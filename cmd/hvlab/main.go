// Command hvlab runs the emulated outside world of hvro: EXPRESSCLUSTER X
// clusters that speak the real RESTful API, and Hyper-V hosts that are real
// WS-Management servers. "hvlab demo" shows hvro working against them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/hvro/hvro/cmd/hvro/cli"
	"github.com/hvro/hvro/test/sim/lab"
)

const usage = `usage:
  hvlab run --topology lab.yaml [--log-level info]   run the emulators until interrupted
  hvlab demo [--keep]                                  a narrated tour of hvro in a built-in lab
  hvlab chaos [--seeds N] [--seed S] [--steps K] ...    seeded faults against the lab and hvro; invariants checked
  hvlab hook ...                                       hvro hook, for the lab's ECX scripts
  hvlab serve --config hvro.yaml                       hvro serve, for the chaos runner
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return runCmd(args[1:], stdout, stderr)
	case "demo":
		return demoCmd(args[1:], stdout, stderr)
	case "chaos":
		return chaosCmd(args[1:], stdout, stderr)
	case "serve":
		return serveCmd(args[1:], stderr)
	case "hook":
		// The demo's ECX scripts run this, the same code as hvro hook.
		return cli.Hook(args[1:], os.Getenv, stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hvlab: unknown command %q\n%s", args[0], usage)
	return 2
}

func runCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvlab run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	topoPath := fs.String("topology", "", "topology file (lab.yaml)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *topoPath == "" || fs.NArg() > 0 {
		fmt.Fprint(stderr, "hvlab run: --topology is required and no other arguments are taken\n"+usage)
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(stderr, "hvlab run: --log-level %q: want debug, info, warn or error\n", *level)
		return 2
	}
	topo, err := lab.Load(*topoPath)
	if err != nil {
		fmt.Fprintf(stderr, "hvlab run: %v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	l, err := lab.Start(ctx, topo, log)
	if err != nil {
		fmt.Fprintf(stderr, "hvlab run: %v\n", err)
		return 1
	}
	printAddrs(stdout, l.Addrs())
	<-ctx.Done()
	if err := l.Close(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "hvlab run: close: %v\n", err)
		return 1
	}
	return 0
}

func printAddrs(w io.Writer, a lab.Addrs) {
	fmt.Fprintf(w, "control  %s\n", a.Control)
	for _, c := range slices.Sorted(maps.Keys(a.ECX)) {
		for _, e := range slices.Sorted(maps.Keys(a.ECX[c])) {
			fmt.Fprintf(w, "ecx      %-10s %-6s %s\n", c, e, a.ECX[c][e])
		}
	}
	for _, h := range slices.Sorted(maps.Keys(a.WinRM)) {
		fmt.Fprintf(w, "winrm    %-10s %s\n", h, a.WinRM[h])
		if s, ok := a.WinRMS[h]; ok {
			fmt.Fprintf(w, "winrm    %-10s %s\n", h, s)
		}
	}
	if a.CAFile != "" {
		fmt.Fprintf(w, "ca       %s\n", a.CAFile)
	}
}

func waitInterrupt() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
