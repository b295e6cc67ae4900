package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/cmd/hvro/service"
)

// serveCmd runs the service until SIGTERM/SIGINT (drain, exit 0). SIGHUP
// reloads the configuration file; a bad one is rejected and the old one
// stays.
func serveCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (hvro.yaml)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hvro serve: usage: hvro serve --config hvro.yaml")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "hvro serve: %s is not a valid configuration:\n%v\n", *path, err)
		return 2
	}
	log := service.NewLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return runService(ctx, cfg, *path, log, nil)
}

// runService runs a loaded configuration until ctx ends; reload, if not
// nil, delivers reload requests (SIGHUP on Unix, nothing on Windows).
func runService(ctx context.Context, cfg *config.Config, path string, log *slog.Logger, reload <-chan os.Signal) int {
	if reload == nil {
		reload = hangups()
	}
	return service.Run(ctx, cfg, path, log, version, reload)
}

func checkConfigCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (hvro.yaml)")
	defaults := fs.Bool("print-defaults", false, "print every default as YAML and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *defaults {
		if err := config.PrintDefaults(stdout); err != nil {
			fmt.Fprintf(stderr, "hvro check-config: %v\n", err)
			return 1
		}
		return 0
	}
	if *path == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hvro check-config: usage: hvro check-config --config hvro.yaml [--print-defaults]")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		var ps config.Problems
		if errors.As(err, &ps) {
			fmt.Fprintf(stdout, "%s: %d problem(s):\n%v\n", *path, len(ps), err)
		} else {
			fmt.Fprintf(stdout, "%s: %v\n", *path, err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s is valid: %d cluster(s), %d pair(s), listening on %s\n", *path, len(cfg.Clusters), len(cfg.Pairs), cfg.Listen)
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	return 0
}
