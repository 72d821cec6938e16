package supervisor

import (
	"os/exec"
	"syscall"

	"github.com/hotmod/hotmod/internal/proctree"
)

// sysProcAttr has the kernel kill a worker when the supervisor dies, however
// it dies (Pdeathsig), so a worker never serves on without one; and puts it
// in a process group of its own, so a terminal's Ctrl-C reaches the
// supervisor only, which forwards one SIGTERM (a second signal to the worker
// would stop it at once).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// startCmd: see proctree.Start (Pdeathsig and the thread that starts a child).
func startCmd(cmd *exec.Cmd) error { return proctree.Start(cmd) }
