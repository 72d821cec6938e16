package proctree

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroups makes a cgroup (v2) for each tree, under a cgroup of this
// process's own: <its cgroup>/hotmod.<pid>.<n>/tree.<m>.
type Cgroups struct {
	base string
	seq  atomic.Int64
}

var bases atomic.Int64 // numbers each OpenCgroups of this process

// OpenCgroups returns where to make the trees' cgroups, or an error saying
// why there is none: no cgroup2 hierarchy mounted, this process's cgroup
// not writable (not delegated to it), or a kernel without cgroup.kill
// (before Linux 5.14).
func OpenCgroups() (*Cgroups, error) {
	own, err := ownCgroup()
	if err != nil {
		return nil, err
	}
	base := filepath.Join(own, fmt.Sprintf("hotmod.%d.%d", os.Getpid(), bases.Add(1)))
	if err := os.Mkdir(base, 0o755); err != nil {
		return nil, fmt.Errorf("cannot create a cgroup in %s (is it delegated to this process?): %w", own, err)
	}
	if _, err := os.Stat(filepath.Join(base, "cgroup.kill")); err != nil {
		os.Remove(base)
		return nil, fmt.Errorf("the kernel has no cgroup.kill (Linux 5.14 or later has): %w", err)
	}
	return &Cgroups{base: base}, nil
}

// ownCgroup is the directory of this process's cgroup in the cgroup2
// hierarchy.
func ownCgroup() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var path string
	found := false
	for line := range strings.Lines(string(data)) {
		if p, ok := strings.CutPrefix(strings.TrimSpace(line), "0::"); ok {
			path, found = p, true
		}
	}
	if !found {
		return "", errors.New("this process is in no cgroup2 hierarchy (cgroup v1 only)")
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options … - fstype source …
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 1 || tail[0] != "cgroup2" {
			continue
		}
		rel, ok := strings.CutPrefix(path, fields[3])
		if !ok {
			continue
		}
		dir := filepath.Join(fields[4], rel)
		if unix.Access(dir, unix.W_OK) != nil {
			return "", fmt.Errorf("the cgroup %s is not writable by this process (not delegated to it)", dir)
		}
		return dir, nil
	}
	return "", errors.New("no cgroup2 hierarchy is mounted")
}

// Close removes the base cgroup, waiting briefly for the trees' cgroups
// to go.
func (cs *Cgroups) Close() error {
	deadline := time.Now().Add(cgroupEmptyWait)
	for {
		err := os.Remove(cs.base)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("removing the cgroup of process modules: %w", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Cgroup is the cgroup of one tree.
type Cgroup struct {
	dir string
	fd  int
}

// create makes a tree's cgroup; nil if it cannot (the tree does without).
func (cs *Cgroups) create() *Cgroup {
	dir := filepath.Join(cs.base, "tree."+strconv.FormatInt(cs.seq.Add(1), 10))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(dir)
		return nil
	}
	return &Cgroup{dir: dir, fd: fd}
}

// FD is the cgroup's directory, opened for SysProcAttr.CgroupFD.
func (c *Cgroup) FD() int { return c.fd }

// Dir is the cgroup's directory.
func (c *Cgroup) Dir() string { return c.dir }

// procs lists the processes in the cgroup.
func (c *Cgroup) procs() []int {
	data, _ := os.ReadFile(filepath.Join(c.dir, "cgroup.procs"))
	var out []int
	for _, f := range strings.Fields(string(data)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (c *Cgroup) kill() {
	_ = os.WriteFile(filepath.Join(c.dir, "cgroup.kill"), []byte("1"), 0)
}

// cgroupEmptyWait bounds how long remove waits for killed processes to
// leave the cgroup.
const cgroupEmptyWait = 2 * time.Second

// remove waits (briefly) for the cgroup to empty and removes it.
func (c *Cgroup) remove() {
	deadline := time.Now().Add(cgroupEmptyWait)
	for {
		err := os.Remove(c.dir)
		if err == nil || errors.Is(err, os.ErrNotExist) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	c.started()
}

// started closes the directory: the child is in.
func (c *Cgroup) started() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}
