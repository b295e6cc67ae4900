// Package cli holds hvro's client commands: the hook ECX scripts run and the
// operator commands that talk to a running hvro. hvlab reuses the hook so
// its demo's script resources run the same code as production.
package cli
