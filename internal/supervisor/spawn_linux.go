package supervisor

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// sysProcAttr has the kernel kill a worker when the supervisor dies, however
// it dies (Pdeathsig), so a worker never serves on without one; and puts it
// in a process group of its own, so a terminal's Ctrl-C reaches the
// supervisor only, which forwards one SIGTERM (a second signal to the worker
// would stop it at once).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}

// Pdeathsig fires when the THREAD that started the child exits, and the Go
// runtime ends a thread whose goroutine exits while locked to it: so every
// worker is started from one goroutine that locks its thread and never
// returns.
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
