package proctree

import (
	"os/exec"
	"runtime"
	"sync"
)

// Start starts cmd from one thread that lives as long as the process.
//
// Pdeathsig (the kernel's kill of a child when its parent dies) fires when
// the THREAD that started the child exits, not the process, and the Go
// runtime ends a thread whose goroutine exits while locked to it. So every
// child is started from one goroutine that locks its thread and never
// returns. The process transport starts module children with it, and the
// supervisor its workers.
func Start(cmd *exec.Cmd) error {
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // for good: see Start
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnRequest{cmd, done}
	return <-done
}

var spawner struct {
	once sync.Once
	reqs chan spawnRequest
}

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}
