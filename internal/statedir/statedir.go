// Package statedir is the daemon's state directory: the files that must
// outlive a crash or a restart (tokens, the crash journal, the quarantine
// list, rollout state, the directory lock). Files are replaced atomically
// (write a temporary file, fsync, rename, fsync the directory), so a sudden
// exit leaves either the old contents or the new, never half of one.
//
// `hotmod serve` keeps it in DIR/.hotmod by default (hidden names are
// ignored by the watcher); a library user names one with hotmod.WithStateDir.
package statedir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Dir is an opened state directory.
type Dir struct {
	path string
}

// Open creates path (mode 0700) if it is missing and returns it. An
// existing directory that others can read or write is refused: it holds
// secrets.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", abs, err)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", abs, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s: not a directory", abs)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("state directory %s has mode %v: it holds secrets, so only its owner may use it; run chmod 700 %s", abs, fi.Mode().Perm(), abs)
	}
	return &Dir{path: abs}, nil
}

// Path is the directory's absolute path.
func (d *Dir) Path() string { return d.path }

// File is the path of name inside the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.path, name) }

// ReadFile reads name; a missing file is os.ErrNotExist.
func (d *Dir) ReadFile(name string) ([]byte, error) { return os.ReadFile(d.File(name)) }

// WriteFile replaces name with data atomically and durably.
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	return WriteAtomic(d.File(name), data, perm)
}

// WriteAtomic replaces path with data: a temporary file beside it is
// written and synced, renamed over path, and the directory synced, so a
// crash at any point leaves the old contents or the new.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename this finds nothing
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock takes the directory's lock (an flock on the file "lock", which the
// kernel releases when the process ends, however it ends) and writes this
// process's id into it. When another process holds it, the error wraps
// ErrLocked and names that process. The lock is held until unlock is called
// or the process exits; a child started with the file descriptor inherits
// it.
func (d *Dir) Lock(what string) (unlock func(), err error) {
	f, err := os.OpenFile(d.File("lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(d.File("lock"))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			h := strings.TrimSpace(string(holder))
			if h == "" {
				h = "another process"
			}
			return nil, fmt.Errorf("%s %s is in use by %s (lock %s): %w", what, d.path, h, d.File("lock"), ErrLocked)
		}
		return nil, fmt.Errorf("locking %s: %w", d.File("lock"), err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte("pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
