package service

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/hvro/hvro/cmd/hvro/config"
)

// NewLogger is hvro's logger for cfg's log_level and log_format.
func NewLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: lvl}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// Run is hvro serve: it runs a loaded configuration until ctx ends, reads
// path again on every reload request, then drains. It returns the process's
// exit code. hvro and hvlab (whose chaos runner starts hvro as a real
// process) both serve through it.
func Run(ctx context.Context, cfg *config.Config, path string, log *slog.Logger, version string, reload <-chan os.Signal) int {
	svc, err := New(cfg, Options{Logger: log, Version: version})
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
