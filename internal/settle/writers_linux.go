package settle

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// OpenForWriting reports whether some process holds path open for writing.
// Linux grants a read lease (fcntl F_SETLEASE, F_RDLCK) on a file only while
// no process has it open for writing, so taking one and dropping it at once
// answers the question for every writer, whenever it opened the file —
// before this process started included. known is false where a lease
// cannot be taken for another reason: a file owned by another user (without
// CAP_LEASE), a file system without leases, leases turned off
// (/proc/sys/fs/leases-enable).
func OpenForWriting(path string) (open, known bool) {
	f, err := os.Open(path)
	if err != nil {
		return false, false
	}
	defer f.Close()
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_RDLCK); err != nil {
		if errors.Is(err, unix.EAGAIN) {
			return true, true
		}
		return false, false
	}
	// Held for the time of one more system call: a writer that opens the
	// file meanwhile waits at most that long for the lease to go.
	_, _ = unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
	return false, true
}
