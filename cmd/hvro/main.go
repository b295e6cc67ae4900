// Command hvro is the Hyper-V Replica orchestrator: one service that keeps
// replication between two EXPRESSCLUSTER X clusters of Hyper-V hosts correct
// whenever a failover group moves, and the CLI and ECX hook that talk to it.
package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/hvro/hvro/cmd/hvro/cli"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = ""
)

const usage = `usage: hvro COMMAND [flags]

service
  serve --config F                      run the service
  check-config --config F               validate a configuration (--print-defaults shows the defaults)
  backup --config F --out FILE          consistent copy of the store, online or offline
  version                               version, commit, Go version
  service install|uninstall|run --config F [--name hvro]   Windows service (Linux: deploy/systemd)

ECX scripts
  hook --url URL --cluster C --group G --phase start|stop --token-file F [--wait 5m] [--strict]

operators (--server URL --token-file F, or HVRO_SERVER / HVRO_TOKEN_FILE)
  status [-o table|json]                one line per pair
  pair show NAME                        one pair in full
  reconcile NAME | pause NAME | resume NAME
  failover NAME --mode planned|unplanned [--wait 10m]
  ops [--pair NAME] [--limit N]         operation history
`

func main() {
	os.Exit(realMain(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func realMain(args []string, env func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "version", "--version":
		fmt.Fprintf(stdout, "hvro %s (commit %s, %s %s/%s)\n", version, buildCommit(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "hook":
		return cli.Hook(rest, env, stdout, stderr)
	case "status", "pair", "reconcile", "pause", "resume", "failover", "ops":
		return cli.Admin(cmd, rest, env, stdout, stderr)
	case "serve":
		return serveCmd(rest, stdout, stderr)
	case "check-config":
		return checkConfigCmd(rest, stdout, stderr)
	case "backup":
		return backupCmd(rest, stdout, stderr)
	case "service":
		return serviceCmd(rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hvro: unknown command %q\n%s", cmd, usage)
	return 2
}

func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
