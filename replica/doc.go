// Package replica drives Hyper-V Replica on one host over WinRM: it emits
// short PowerShell scripts with every value quoted, and turns their JSON
// output into typed results and classified errors (transient, permanent or
// unknown).
//
// The one thing to know: every Driver method is exactly one WinRM command,
// bounded by the caller's context and Config.Timeout, and idempotent where
// its comment says so, so the orchestrator can repeat any step after a
// crash. README.md covers transports, timeouts and error classes.
package replica
