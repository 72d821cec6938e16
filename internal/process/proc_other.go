//go:build !unix

package process

import (
	"os"
	"os/exec"
	"syscall"

	"github.com/hotmod/hotmod/internal/proctree"
)

func sysProcAttr(*proctree.Cgroup) *syscall.SysProcAttr { return nil }

func startCmd(cmd *exec.Cmd) error { return cmd.Start() }

func waitExited(int) bool { return false }

func killGroup(p *os.Process) { p.Kill() }

// rawWrite never writes here: the flusher does, blocking.
type rawWrite struct{}

func (*rawWrite) try(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }

func wouldBlock(err error) bool { return err == errWouldBlock }
