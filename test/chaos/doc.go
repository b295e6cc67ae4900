// Package chaos runs seeded, Jepsen-style chaos against the lab and hvro as
// a real process: group moves in either cluster or both at once, node
// crashes and boots, ECX API endpoints failing or slow, Hyper-V cmdlets
// failing with the emulator's named errors or slowed down, hvro killed
// with SIGKILL and restarted, planned and unplanned failovers; all
// interleaved by a random source seeded per run. A checker watches the
// invariants of ARCHITECTURE.md all along, from the emulators' own records;
// at the end the faults clear and every pair must converge (I4).
//
// The one thing to know: the action list is a pure function of the seed,
// the step count and the pair count, so a failing seed replays the same
// actions (timing between them differs from run to run).
package chaos
