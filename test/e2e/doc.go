// Package e2e holds scenario tests that run hvro against the emulators over
// real loopback ports and check the invariants of ARCHITECTURE.md after every
// step.
package e2e
