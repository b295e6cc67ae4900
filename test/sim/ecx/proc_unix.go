//go:build unix

package ecx

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts a script in its own process group and kills the whole
// group on timeout, so a shell's children die with it like a .bat's do.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
