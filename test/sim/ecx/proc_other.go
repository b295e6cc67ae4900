//go:build !unix

package ecx

import "os/exec"

// setProcessGroup is a no-op where process groups are not available: the
// default cancel kills the script itself, and WaitDelay bounds the wait for
// anything it left behind.
func setProcessGroup(cmd *exec.Cmd) {}
