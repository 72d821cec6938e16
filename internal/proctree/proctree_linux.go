package proctree

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// MarkerEnv is the environment variable that names a child's tree.
const MarkerEnv = "HOTMOD_PROCTREE"

// maxRounds bounds how often Kill sweeps: each round kills everything it
// finds, so only a process forked during the round before is left for the
// next one.
const maxRounds = 10

var (
	subreaper atomic.Bool
	seq       atomic.Int64

	// roots are the live children that trees belong to: the host's own
	// os/exec children, which their Cmd.Wait reaps; orphans are the rest.
	rootsMu sync.Mutex
	roots   = map[int]bool{}
)

// BecomeSubreaper makes this process the reaper of its orphaned
// descendants (prctl PR_SET_CHILD_SUBREAPER): a process that a child's
// descendant leaves behind re-parents to it, not to init, so that Kill
// finds it among this process's children. It is process-wide and lasts for
// the life of the process; call it in the process that starts the children.
func BecomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	if !subreaper.Swap(true) {
		go janitor()
	}
	return nil
}

// IsSubreaper says whether BecomeSubreaper succeeded.
func IsSubreaper() bool { return subreaper.Load() }

// Tree is the processes that one child started.
type Tree struct {
	marker string // MarkerEnv=value
	cgroup *Cgroup
	root   atomic.Int64
}

// New returns a tree for a child about to start. Add Env to the child's
// environment and, where Cgroup is not nil, start the child in it; then
// call Started with its pid.
func New(cgroups *Cgroups) *Tree {
	t := &Tree{marker: fmt.Sprintf("%s=%d.%d", MarkerEnv, os.Getpid(), seq.Add(1))}
	if cgroups != nil {
		t.cgroup = cgroups.create()
	}
	return t
}

// Env is the environment variable that marks the tree's processes.
func (t *Tree) Env() string { return t.marker }

// Cgroup is the cgroup the child starts in, or nil.
func (t *Tree) Cgroup() *Cgroup { return t.cgroup }

// Started records the child's pid; the child is in its cgroup now.
func (t *Tree) Started(pid int) {
	if t.cgroup != nil {
		t.cgroup.started()
	}
	t.root.Store(int64(pid))
	rootsMu.Lock()
	roots[pid] = true
	rootsMu.Unlock()
}

// Reaped says the child itself has been reaped: its pid may be reused.
func (t *Tree) Reaped() {
	pid := int(t.root.Swap(0))
	rootsMu.Lock()
	delete(roots, pid)
	rootsMu.Unlock()
}

// Kill kills the child (if it is not reaped) and everything its tree
// holds, and returns how many other processes it killed. It may be called
// more than once; after the child exits it finds what the child left.
func (t *Tree) Kill() int {
	killed := map[int]bool{}
	if t.cgroup != nil {
		for _, pid := range t.cgroup.procs() { // to reap them below
			killed[pid] = true
		}
		t.cgroup.kill()
	}
	for range maxRounds {
		pids := t.find()
		fresh := 0
		for _, pid := range pids {
			if !killed[pid] {
				fresh++
			}
			killed[pid] = true
			syscall.Kill(pid, syscall.SIGKILL)
		}
		if fresh == 0 {
			break
		}
	}
	if t.cgroup != nil {
		t.cgroup.remove()
	}
	delete(killed, int(t.root.Load()))
	n := len(killed)
	if subreaper.Load() && n > 0 {
		go reap(killed)
	}
	return n
}

// find lists the child, its descendants and the marked processes that left
// its tree, with their descendants.
func (t *Tree) find() []int {
	var out []int
	if root := int(t.root.Load()); root > 0 {
		syscall.Kill(-root, syscall.SIGKILL) // its process group, as one step
		out = append(out, root)
		out = appendDescendants(out, root)
	}
	var candidates []int
	if subreaper.Load() {
		candidates = children(os.Getpid())
	} else {
		candidates = allPids()
	}
	for _, pid := range candidates {
		if pid != int(t.root.Load()) && marked(pid, t.marker) {
			out = append(out, pid)
			out = appendDescendants(out, pid)
		}
	}
	return out
}

// children reads the children of every thread of pid.
func children(pid int) []int {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var out []int
	for _, f := range tasks {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, w := range strings.Fields(string(data)) {
			if n, err := strconv.Atoi(w); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// appendDescendants appends every descendant of pid, depth first.
func appendDescendants(out []int, pid int) []int {
	for _, c := range children(pid) {
		out = append(out, c)
		out = appendDescendants(out, c)
	}
	return out
}

// Descendants lists every live descendant of pid.
func Descendants(pid int) []int { return appendDescendants(nil, pid) }

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil && n != os.Getpid() {
			out = append(out, n)
		}
	}
	return out
}

// marked says whether pid's environment holds marker. A process of
// another user, or one that exited, is not readable: not marked.
func marked(pid int, marker string) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if string(kv) == marker {
			return true
		}
	}
	return false
}

// markedAny says whether pid's environment holds a marker of this process.
func markedAny(pid int) bool {
	env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	return hasVar(env, []byte(MarkerEnv+"="+strconv.Itoa(os.Getpid())+"."))
}

// reap waits for the killed processes that re-parent to this process,
// giving up on each after a while (one that stays with a parent of its
// own is that parent's to reap).
func reap(pids map[int]bool) {
	deadline := time.Now().Add(5 * time.Second)
	for len(pids) > 0 && time.Now().Before(deadline) {
		for pid := range pids {
			ppid, ok := parent(pid)
			switch {
			case !ok: // gone: someone reaped it
				delete(pids, pid)
			case ppid == os.Getpid() && !isRoot(pid):
				var ws syscall.WaitStatus
				if n, _ := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); n == pid {
					delete(pids, pid)
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isRoot(pid int) bool {
	rootsMu.Lock()
	defer rootsMu.Unlock()
	return roots[pid]
}

// parent reads pid's parent from /proc/PID/stat.
func parent(pid int) (int, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 2 {
		return 0, false
	}
	ppid, err := strconv.Atoi(f[1])
	return ppid, err == nil
}

// janitorEvery is how often a subreaper looks for orphans of its trees
// that exited on their own (a variable for tests).
var janitorEvery = time.Second

// janitor reaps, now and then, the orphans of this process's trees that
// exited by themselves while their tree lives on: adopted zombies nobody
// else waits for. An orphan is remembered while it runs (its environment
// is readable then, a zombie's is not) and reaped once it has exited.
func janitor() {
	adopted := map[int]bool{}
	for {
		time.Sleep(janitorEvery)
		for _, pid := range children(os.Getpid()) {
			if !adopted[pid] && !isRoot(pid) && markedAny(pid) {
				adopted[pid] = true
			}
		}
		for pid := range adopted {
			var ws syscall.WaitStatus
			n, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if n == pid || err != nil { // reaped now, or by Kill's reap before
				delete(adopted, pid)
			}
		}
	}
}

// Sweep kills what the trees of the host process pid left behind when it
// died without killing them (SIGKILL, a crash): every process in the
// cgroups it made, and every process marked as one of its trees', with
// their descendants. It returns how many it killed. A supervisor that
// restarts a host worker calls it once the worker has exited.
func Sweep(pid int) int {
	n := 0
	if own, err := ownCgroup(); err == nil {
		bases, _ := filepath.Glob(filepath.Join(own, "hotmod."+strconv.Itoa(pid)+".*"))
		for _, base := range bases {
			trees, _ := filepath.Glob(filepath.Join(base, "tree.*"))
			for _, dir := range trees {
				cg := &Cgroup{dir: dir, fd: -1}
				n += len(cg.procs())
				cg.kill()
				cg.remove()
			}
			os.Remove(base)
		}
	}
	prefix := []byte(MarkerEnv + "=" + strconv.Itoa(pid) + ".")
	for range maxRounds {
		var found []int
		for _, p := range allPids() {
			if env, err := os.ReadFile("/proc/" + strconv.Itoa(p) + "/environ"); err == nil && hasVar(env, prefix) {
				found = append(found, p)
				found = appendDescendants(found, p)
			}
		}
		if len(found) == 0 {
			break
		}
		for _, p := range found {
			syscall.Kill(p, syscall.SIGKILL)
		}
		n += len(found)
		time.Sleep(10 * time.Millisecond) // a killed process's environ stays readable until it has exited
	}
	return n
}

// hasVar says whether the environment block env holds a variable that
// begins with prefix.
func hasVar(env, prefix []byte) bool {
	for kv := range bytes.SplitSeq(env, []byte{0}) {
		if bytes.HasPrefix(kv, prefix) {
			return true
		}
	}
	return false
}
