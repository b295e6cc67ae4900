// Command hvro is the Hyper-V Replica orchestrator: one service that keeps
// replication between two EXPRESSCLUSTER X clusters of Hyper-V hosts correct
// whenever a failover group moves, and the CLI and ECX hook that talk to it.
package main

import (
	"fmt"
	"os"
	"runtime"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "version" {
		fmt.Printf("hvro %s (commit %s, %s)\n", version, commit, runtime.Version())
		return
	}
	fmt.Fprintln(os.Stderr, "usage: hvro version   (the service and its CLI are being built; see README.md)")
	os.Exit(2)
}
