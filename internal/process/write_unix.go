//go:build unix

package process

import "syscall"

// rawWrite is one write attempt that does not wait: what the pipe takes
// now. Its method value is made once, so a write allocates nothing.
type rawWrite struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

func (op *rawWrite) write(fd uintptr) bool {
	for {
		op.n, op.err = syscall.Write(int(fd), op.b)
		if op.err != syscall.EINTR {
			return true
		}
	}
}

// try writes what the pipe takes of b now.
func (op *rawWrite) try(rc syscall.RawConn, b []byte) (int, error) {
	if rc == nil {
		return 0, errWouldBlock
	}
	if op.fn == nil {
		op.fn = op.write
	}
	op.b = b
	rerr := rc.Write(op.fn)
	n, err := max(op.n, 0), op.err
	op.b, op.n, op.err = nil, 0, nil
	if rerr != nil {
		return n, rerr
	}
	return n, err
}

func wouldBlock(err error) bool { return err == syscall.EAGAIN || err == errWouldBlock }
