package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hvro/hvro/cmd/hvro/cli"
	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/cmd/hvro/service"
	"github.com/hvro/hvro/store"
)

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

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
	log := newLogger(cfg, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return runService(ctx, cfg, *path, log, nil)
}

// runService runs a loaded configuration until ctx ends; reload, if not
// nil, delivers reload requests (SIGHUP on Unix, nothing on Windows).
func runService(ctx context.Context, cfg *config.Config, path string, log *slog.Logger, reload <-chan os.Signal) int {
	svc, err := service.New(cfg, service.Options{Logger: log, Version: version})
	if err != nil {
		log.Error("cannot start", "error", err)
		return 1
	}
	svc.ReloadSource(func() (*config.Config, error) { return config.Load(path) })
	if err := svc.Start(ctx); err != nil {
		log.Error("cannot start", "error", err)
		svc.Shutdown(context.Background())
		return 1
	}
	if reload == nil {
		reload = hangups()
	}
	for {
		select {
		case <-reload:
			if err := svc.ReloadFromSource(ctx); err != nil {
				log.Error("reload rejected; the old configuration stays in force", "error", err)
			}
			continue
		case <-ctx.Done():
		}
		break
	}
	log.Info("stopping: finishing running steps", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := svc.Shutdown(sctx); err != nil {
		log.Error("stopped with errors", "error", err)
		return 1
	}
	log.Info("stopped")
	return 0
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
	return 0
}

// backupCmd copies the store consistently: directly when hvro is stopped,
// through the running service's API when it holds the store's lock.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (hvro.yaml)")
	out := fs.String("out", "", "file to write the copy to (must not exist)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hvro backup: usage: hvro backup --config hvro.yaml --out FILE")
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintf(stderr, "hvro backup: %s is not a valid configuration:\n%v\n", *path, err)
		return 2
	}
	n, how, err := backup(cfg, *out)
	if err != nil {
		os.Remove(*out)
		fmt.Fprintf(stderr, "hvro backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s (%s)\n", n, *out, how)
	return 0
}

func backup(cfg *config.Config, out string) (int64, string, error) {
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "hvro.db"), store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
	var n int64
	how := "offline copy"
	switch {
	case err == nil:
		n, err = st.Backup(f)
		st.Close()
	case errors.Is(err, store.ErrLocked):
		how = "online copy through the API"
		n, err = backupOnline(cfg, f)
	default:
		f.Close()
		return 0, "", err
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, how, err
	}
	// The copy must open as a store: a cut transfer never passes for a backup.
	check, err := store.Open(out, store.Options{ReadOnly: true})
	if err != nil {
		return n, how, fmt.Errorf("the copy does not open as an hvro store: %w", err)
	}
	return n, how, check.Close()
}

func backupOnline(cfg *config.Config, w io.Writer) (int64, error) {
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	host := cfg.Listen
	if h, p, ok := strings.Cut(host, ":"); ok && (h == "" || h == "0.0.0.0" || h == "::") {
		host = "127.0.0.1:" + p
	}
	// The service's own certificate may not name 127.0.0.1; the admin token
	// still authenticates the request.
	hc, err := cli.HTTPClient("", cfg.TLS.Enabled(), 0)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+host+"/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Auth.AdminToken.Value())
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the store is locked by a running hvro, and its API at %s cannot be reached: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("hvro answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return io.Copy(w, resp.Body)
}
