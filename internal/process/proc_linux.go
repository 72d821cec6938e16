package process

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
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

// Pdeathsig fires when the THREAD that started the child exits, not the
// process, and the Go runtime ends threads whose goroutine exits while
// locked to them. So every child is started from one goroutine that locks
// its thread and never returns: that thread lives as long as the process.
var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

func startCmd(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // for good: see spawner
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd, done}
	return <-done
}

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
