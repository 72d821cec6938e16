package process

import (
	"os"
	"os/exec"
	"syscall"
	"unsafe"

	"github.com/hotmod/hotmod/internal/proctree"
)

// sysProcAttr puts the child in a process group of its own (so that the
// host can kill it and whatever it started at once), in its tree's cgroup
// if it has one, and has the kernel kill it when the host dies (Pdeathsig).
func sysProcAttr(cg *proctree.Cgroup) *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if cg != nil {
		attr.UseCgroupFD, attr.CgroupFD = true, cg.FD()
	}
	return attr
}

// startCmd: see proctree.Start (Pdeathsig and the thread that starts a child).
func startCmd(cmd *exec.Cmd) error { return proctree.Start(cmd) }

// waitExited blocks until the process has exited, without reaping it
// (waitid with WNOWAIT), so that its id still names it and its group.
func waitExited(pid int) bool {
	const (
		pPID    = 1
		wNOWAIT = 0x1000000
	)
	var info [128]byte // siginfo_t
	for {
		_, _, errno := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid),
			uintptr(unsafe.Pointer(&info[0])), syscall.WEXITED|wNOWAIT, 0, 0)
		if errno != syscall.EINTR {
			return errno == 0
		}
	}
}

// killGroup kills the process and its process group.
func killGroup(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}
