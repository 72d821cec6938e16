//go:build unix && !linux

package process

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/hotmod/hotmod/internal/proctree"
)

// sysProcAttr puts the child in a process group of its own, so that the
// host can kill it and whatever it started at once. (Without Pdeathsig, a
// child notices that the host died by the end of its stdin.)
func sysProcAttr(*proctree.Cgroup) *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

// waitExited cannot wait without reaping here.
func waitExited(int) bool { return false }

func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}
