//go:build windows

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/eventlog"
	"golang.org/x/sys/windows/svc/mgr"

	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/cmd/hvro/service"
)

// Log file limits of the service: about 100 MiB of history at most.
const (
	serviceLogMax  = 20 << 20
	serviceLogKeep = 4
)

func serviceAction(sa serviceArgs, stdout, stderr io.Writer) int {
	var err error
	switch sa.action {
	case "install":
		err = installService(sa, stdout)
	case "uninstall":
		err = uninstallService(sa, stdout)
	case "run":
		return runAsService(sa, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hvro service %s: %v\n", sa.action, err)
		return 1
	}
	return 0
}

func installService(sa serviceArgs, stdout io.Writer) error {
	cfgPath, err := filepath.Abs(sa.config)
	if err != nil {
		return fmt.Errorf("--config %s: %w", sa.config, err)
	}
	if _, err := os.Stat(cfgPath); err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find hvro.exe: %w", err)
	}
	// The service drains for shutdown_timeout; Windows must wait that long
	// at system shutdown too, or it kills hvro in the middle of a step.
	drain := config.Defaults().ShutdownTimeout
	if cfg, err := config.Load(cfgPath); err != nil {
		fmt.Fprintf(stdout, "warning: %s does not pass check-config yet; the service will not start until it does:\n%v\n", cfgPath, err)
	} else {
		drain = cfg.ShutdownTimeout
	}
	args := []string{"service", "run", "--name", sa.name, "--config", cfgPath}
	if sa.logFile != "" {
		lf, err := filepath.Abs(sa.logFile)
		if err != nil {
			return fmt.Errorf("--log-file %s: %w", sa.logFile, err)
		}
		args = append(args, "--log-file", lf)
	}

	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the Service Control Manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(sa.name); err == nil {
		s.Close()
		return fmt.Errorf("a service named %q exists already; remove it first with: hvro service uninstall --name %s", sa.name, sa.name)
	}
	display := "hvro (Hyper-V Replica orchestrator)"
	if sa.name != defaultServiceName {
		display = "hvro " + sa.name + " (Hyper-V Replica orchestrator)"
	}
	s, err := m.CreateService(sa.name, exe, mgr.Config{
		DisplayName:      display,
		Description:      "Keeps Hyper-V Replica between two EXPRESSCLUSTER X clusters correct. Configuration: " + cfgPath,
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true, // after the network is up
		ErrorControl:     mgr.ErrorNormal,
	}, args...)
	if err != nil {
		return fmt.Errorf("create service %s: %w", sa.name, err)
	}
	defer s.Close()
	if err := configureService(s, drain); err != nil {
		s.Delete() // no half-configured service left behind
		return err
	}
	if err := eventlog.InstallAsEventCreate(sa.name, eventlog.Error|eventlog.Warning|eventlog.Info); err != nil {
		// Most often the source exists from an earlier install; hvro still
		// writes to it then.
		fmt.Fprintf(stdout, "note: event log source %s: %v\n", sa.name, err)
	}
	fmt.Fprintf(stdout, "installed service %s: %s %s\nstart it with: Start-Service %s\n",
		sa.name, exe, windows.ComposeCommandLine(args), sa.name)
	return nil
}

// configureService sets what CreateService cannot: restart on failure,
// including a non-zero exit (hvro exits 1 when it cannot start), and a
// preshutdown timeout long enough for the drain.
func configureService(s *mgr.Service, drain time.Duration) error {
	err := s.SetRecoveryActions([]mgr.RecoveryAction{
		{Type: mgr.ServiceRestart, Delay: 10 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 30 * time.Second},
		{Type: mgr.ServiceRestart, Delay: 2 * time.Minute},
	}, uint32((24 * time.Hour).Seconds()))
	if err != nil {
		return fmt.Errorf("set recovery actions: %w", err)
	}
	if err := s.SetRecoveryActionsOnNonCrashFailures(true); err != nil {
		return fmt.Errorf("set recovery on non-crash failures: %w", err)
	}
	// Since build 15063 (Windows 10 1703, Server 2019) the preshutdown
	// default is 10s.
	info := struct{ timeout uint32 }{uint32((drain + 30*time.Second).Milliseconds())}
	if err := windows.ChangeServiceConfig2(s.Handle, windows.SERVICE_CONFIG_PRESHUTDOWN_INFO, (*byte)(unsafe.Pointer(&info))); err != nil {
		return fmt.Errorf("set preshutdown timeout: %w", err)
	}
	return nil
}

func uninstallService(sa serviceArgs, stdout io.Writer) error {
	m, err := mgr.Connect()
	if err != nil {
		return fmt.Errorf("connect to the Service Control Manager (run as Administrator): %w", err)
	}
	defer m.Disconnect()
	s, err := m.OpenService(sa.name)
	if err != nil {
		return fmt.Errorf("open service %s: %w", sa.name, err)
	}
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return fmt.Errorf("query service %s: %w", sa.name, err)
	}
	if st.State != svc.Stopped {
		fmt.Fprintf(stdout, "stopping %s (running steps finish first)...\n", sa.name)
		if st.State != svc.StopPending {
			if _, err := s.Control(svc.Stop); err != nil {
				return fmt.Errorf("stop service %s: %w", sa.name, err)
			}
		}
		// The SCM has no "wait for stopped"; hvro's drain is bounded by
		// shutdown_timeout, so this poll is too.
		deadline := time.Now().Add(10 * time.Minute)
		for st.State != svc.Stopped {
			if time.Now().After(deadline) {
				return fmt.Errorf("service %s did not stop within 10 minutes (state %d)", sa.name, st.State)
			}
			time.Sleep(500 * time.Millisecond)
			if st, err = s.Query(); err != nil {
				return fmt.Errorf("query service %s: %w", sa.name, err)
			}
		}
	}
	if err := s.Delete(); err != nil {
		return fmt.Errorf("delete service %s: %w", sa.name, err)
	}
	if err := eventlog.Remove(sa.name); err != nil {
		fmt.Fprintf(stdout, "note: event log source %s: %v\n", sa.name, err)
	}
	fmt.Fprintf(stdout, "removed service %s; the configuration, the store and the logs stay\n", sa.name)
	return nil
}

func runAsService(sa serviceArgs, stderr io.Writer) int {
	isService, err := svc.IsWindowsService()
	if err != nil {
		fmt.Fprintf(stderr, "hvro service run: %v\n", err)
		return 1
	}
	if !isService {
		fmt.Fprintf(stderr, "hvro service run: only the Service Control Manager starts this; use Start-Service %s, or hvro serve --config %s in a console\n", sa.name, sa.config)
		return 2
	}
	h := &winService{args: sa}
	if el, err := eventlog.Open(sa.name); err == nil {
		defer el.Close()
		h.events = el
	}
	if err := svc.Run(sa.name, h); err != nil {
		h.event(eventIDError, fmt.Sprintf("hvro service %s: %v", sa.name, err))
		return 1
	}
	return int(h.exitCode)
}

// winService is hvro serve under the Service Control Manager: stop,
// shutdown and preshutdown cancel the context so hvro drains; paramchange
// (sc.exe control hvro paramchange) reloads the configuration like SIGHUP.
type winService struct {
	args     serviceArgs
	events   eventSink // nil when the event log source is missing
	exitCode uint32
}

func (w *winService) event(eid uint32, msg string) {
	if w.events == nil {
		return
	}
	switch eid {
	case eventIDError:
		_ = w.events.Error(eid, msg)
	case eventIDWarning:
		_ = w.events.Warning(eid, msg)
	default:
		_ = w.events.Info(eid, msg)
	}
}

func (w *winService) fail(code uint32, msg string) (bool, uint32) {
	w.event(eventIDError, msg)
	w.exitCode = code
	return true, code
}

func (w *winService) Execute(_ []string, req <-chan svc.ChangeRequest, status chan<- svc.Status) (bool, uint32) {
	status <- svc.Status{State: svc.StartPending, WaitHint: 30000}
	cfgPath, err := filepath.Abs(w.args.config)
	if err != nil {
		return w.fail(2, fmt.Sprintf("hvro: --config %s: %v", w.args.config, err))
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return w.fail(2, fmt.Sprintf("hvro: %s is not a valid configuration; the service stops:\n%v", cfgPath, err))
	}
	logPath := w.args.logFile
	if logPath == "" {
		logPath = filepath.Join(filepath.Dir(cfgPath), "logs", "hvro.log")
	}
	lf, err := openLogFile(logPath, serviceLogMax, serviceLogKeep)
	if err != nil {
		return w.fail(1, fmt.Sprintf("hvro: %v", err))
	}
	defer lf.Close()
	log := slog.New(newEventLogHandler(service.NewLogger(cfg, lf).Handler(), w.events))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan os.Signal, 1)
	done := make(chan int, 1)
	go func() { done <- runService(ctx, cfg, cfgPath, log, reload) }()
	running := svc.Status{State: svc.Running,
		Accepts: svc.AcceptStop | svc.AcceptShutdown | svc.AcceptPreShutdown | svc.AcceptParamChange}
	status <- running
	w.event(eventIDInfo, fmt.Sprintf("hvro %s started: configuration %s, log %s", version, cfgPath, logPath))

	// While draining, the checkpoint moves so the SCM sees progress.
	drainHint := uint32((cfg.ShutdownTimeout + 30*time.Second).Milliseconds())
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var checkpoint uint32
	stopping := false
	for {
		select {
		case code := <-done:
			if code != 0 {
				return w.fail(uint32(code), fmt.Sprintf("hvro stopped with exit code %d; see %s", code, logPath))
			}
			w.event(eventIDInfo, "hvro stopped")
			return false, 0
		case <-tick.C:
			if stopping {
				checkpoint++
				status <- svc.Status{State: svc.StopPending, CheckPoint: checkpoint, WaitHint: drainHint}
			}
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				status <- c.CurrentStatus
			case svc.Stop, svc.Shutdown, svc.PreShutdown:
				if !stopping {
					stopping = true
					status <- svc.Status{State: svc.StopPending, WaitHint: drainHint}
					cancel()
				}
			case svc.ParamChange:
				select {
				case reload <- syscall.SIGHUP:
				default: // a reload is pending already
				}
			default:
				log.Warn("unexpected service control request", "cmd", uint32(c.Cmd))
			}
		}
	}
}
