//go:build !linux

package proctree

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// MarkerEnv is the environment variable that names a child's tree.
const MarkerEnv = "HOTMOD_PROCTREE"

var seq atomic.Int64

// BecomeSubreaper is Linux's only.
func BecomeSubreaper() error {
	return errors.New("a child subreaper is Linux's only: processes a module's child leaves behind are not reached")
}

// IsSubreaper is false here.
func IsSubreaper() bool { return false }

// Tree is a child's tree; here only its process group is in reach.
type Tree struct {
	marker string
	root   atomic.Int64
}

// New returns a tree for a child about to start.
func New(*Cgroups) *Tree {
	return &Tree{marker: fmt.Sprintf("%s=%d.%d", MarkerEnv, os.Getpid(), seq.Add(1))}
}

// Env is the environment variable that marks the tree's processes.
func (t *Tree) Env() string { return t.marker }

// Cgroup is nil here.
func (t *Tree) Cgroup() *Cgroup { return nil }

// Started records the child's pid.
func (t *Tree) Started(pid int) { t.root.Store(int64(pid)) }

// Reaped says the child has been reaped.
func (t *Tree) Reaped() { t.root.Store(0) }

// Kill reaches nothing beyond the child's process group here, which the
// caller kills.
func (t *Tree) Kill() int { return 0 }

// Descendants is unknown here.
func Descendants(int) []int { return nil }

// Cgroups are Linux's only.
type Cgroups struct{}

// Cgroup is Linux's only.
type Cgroup struct{}

// OpenCgroups fails here.
func OpenCgroups() (*Cgroups, error) { return nil, errors.New("cgroups are Linux's only") }

// Close does nothing.
func (*Cgroups) Close() error { return nil }

// FD is never used here.
func (*Cgroup) FD() int { return -1 }

// Sweep reaches nothing here.
func Sweep(int) int { return 0 }
