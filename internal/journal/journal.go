// Package journal is a crash journal for a process that hosts native
// modules, and the quarantine list it feeds.
//
// A native module shares its host's address space: a goroutine it starts
// may panic, a method may call os.Exit, and the process ends with no chance
// to say why. The journal is written so that it survives such an end: each
// native artifact opened is recorded (content hash, path, when) by an
// fsync'd append before plugin.Open, and each version of a native or
// builtin module has a counter of calls in flight in a file mapped
// MAP_SHARED, updated with atomic adds (the page cache outlives the
// process). After the process died, Collect reads what it left and
// Attribute names the suspect: the module whose code is in the crash
// output, the module whose call was running, or the artifacts opened
// shortly before. Quarantine records a suspect by content hash in the
// state directory, so the next process does not open it.
//
// Layout, under the state directory:
//
//	journal/<pid>-<start>/loads     JSON lines: opens and "settled" marks (flock'd by the writer while it lives)
//	journal/<pid>-<start>/slots     JSON lines: which version each in-flight counter counts
//	journal/<pid>-<start>/inflight  MaxSlots int64 counters, mapped MAP_SHARED
//	journal/<pid>-<start>/crash     the Go runtime's own copy of a fatal crash (debug.SetCrashOutput)
//	journal/<pid>-<start>/clean     written by Close: the process ended as asked
//	quarantine.json                 the quarantine list (see List)
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// MaxSlots is how many versions one process's journal counts calls for
// (slots are not reused); a version past it is not counted, so a crash
// during its call is attributed by the other rules only.
const MaxSlots = 4096

// SuspectWindow is how long after it was opened a native artifact is a
// suspect when the process dies: an artifact still running after it is
// marked settled.
const SuspectWindow = 10 * time.Second

const (
	dirName      = "journal"
	loadsFile    = "loads"
	slotsFile    = "slots"
	inflightFile = "inflight"
	cleanFile    = "clean"
	crashFile    = "crash"
)

// record is one line of the loads file.
type record struct {
	Op      string    `json:"op"` // "open" or "settled"
	Time    time.Time `json:"time"`
	Sum     string    `json:"sha256"`
	Path    string    `json:"path,omitempty"`
	Copy    string    `json:"copy,omitempty"` // the private copy plugin.Open maps
	Module  string    `json:"module,omitempty"`
	Version string    `json:"version,omitempty"`
}

// slot is one line of the slots file.
type slot struct {
	Slot      int    `json:"slot"`
	Module    string `json:"module"`
	Version   string `json:"version"`
	Transport string `json:"transport"`
	Sum       string `json:"sha256,omitempty"`
	Path      string `json:"path,omitempty"`
}

// Run is the journal a live process writes.
type Run struct {
	dir   string
	loads *os.File // flock'd: a reader knows the writer lives
	slots *os.File
	mem   []byte

	mu       sync.Mutex
	next     int
	timers   []*time.Timer
	stateDir string
	closed   bool
}

// Start opens a new journal for this process under stateDir.
func Start(stateDir string) (*Run, error) {
	dir := filepath.Join(stateDir, dirName, strconv.Itoa(os.Getpid())+"-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("crash journal: %w", err)
	}
	r := &Run{dir: dir, stateDir: stateDir}
	var err error
	if r.loads, err = os.OpenFile(filepath.Join(dir, loadsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return nil, fmt.Errorf("crash journal: %w", err)
	}
	if err := syscall.Flock(int(r.loads.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		r.loads.Close()
		return nil, fmt.Errorf("crash journal %s: lock: %w", dir, err)
	}
	if r.slots, err = os.OpenFile(filepath.Join(dir, slotsFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		r.loads.Close()
		return nil, fmt.Errorf("crash journal: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, inflightFile), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err == nil {
		err = f.Truncate(MaxSlots * 8)
	}
	if err == nil {
		r.mem, err = syscall.Mmap(int(f.Fd()), 0, MaxSlots*8, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	}
	if f != nil {
		f.Close() // the mapping keeps the file
	}
	if err != nil {
		r.loads.Close()
		r.slots.Close()
		return nil, fmt.Errorf("crash journal: the in-flight counters: %w", err)
	}
	// The runtime writes a fatal panic or error here too, so a process
	// whose stderr nobody keeps (a library host) still leaves the frames
	// that name the module. It is process-wide: the last journal wins.
	if cf, err := os.OpenFile(filepath.Join(dir, crashFile), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err == nil {
		_ = debug.SetCrashOutput(cf, debug.CrashOptions{})
		cf.Close() // SetCrashOutput keeps its own descriptor
	}
	return r, nil
}

// Dir is the run's directory.
func (r *Run) Dir() string { return r.dir }

// Opening records, durably, that the artifact is about to be opened in this
// process; call it right before plugin.Open. After SuspectWindow the
// artifact is marked settled, and proven (see Prove).
func (r *Run) Opening(sum, path, copyPath, module, version string) error {
	rec := record{Op: "open", Time: time.Now(), Sum: sum, Path: path, Copy: copyPath, Module: module, Version: version}
	if err := r.append(rec, true); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		r.timers = append(r.timers, time.AfterFunc(SuspectWindow, func() {
			if r.append(record{Op: "settled", Time: time.Now(), Sum: sum}, false) == nil {
				_ = Prove(r.stateDir, sum, module, version)
			}
		}))
	}
	return nil
}

func (r *Run) append(rec record, sync bool) error {
	line, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("crash journal: closed")
	}
	if _, err := r.loads.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("crash journal: %w", err)
	}
	if sync {
		if err := r.loads.Sync(); err != nil {
			return fmt.Errorf("crash journal: %w", err)
		}
	}
	return nil
}

// Counter returns the in-flight counter of one version: Add(1) when a call
// starts, Add(-1) when it ends. It returns nil when every slot is taken.
func (r *Run) Counter(module, version, transport, sum, path string) *atomic.Int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.next >= MaxSlots {
		return nil
	}
	n := r.next
	line, _ := json.Marshal(slot{Slot: n, Module: module, Version: version, Transport: transport, Sum: sum, Path: path})
	if _, err := r.slots.Write(append(line, '\n')); err != nil {
		return nil
	}
	r.next++
	return (*atomic.Int64)(unsafe.Pointer(&r.mem[n*8]))
}

// Close marks the run as ended cleanly and removes it. Counters returned
// before must not be used afterwards.
func (r *Run) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for _, t := range r.timers {
		t.Stop()
	}
	r.mu.Unlock()
	_ = debug.SetCrashOutput(nil, debug.CrashOptions{})
	_ = os.WriteFile(filepath.Join(r.dir, cleanFile), nil, 0o600)
	// The counters stay mapped: a call still running on an abandoned
	// goroutine may touch its counter; the mapping dies with the process.
	r.slots.Close()
	r.loads.Close()
	return os.RemoveAll(r.dir)
}
