// Package settle decides when a file that changed in a watched directory is
// complete enough to load. A file that some process still holds open for
// writing is never ready; where that cannot be seen (not Linux, or a file
// this process may not lease), a file is ready once its size and
// modification time have held still for Blind.
//
// A Tracker is fed the paths that changed (Touch) and asked, from time to
// time, which are ready (Due). It is not safe for concurrent use: the
// watcher's one goroutine owns it.
package settle

import (
	"os"
	"time"
)

const (
	// Blind is how long a file must keep its size and modification time
	// before it is loaded where writers cannot be seen. A writer that
	// pauses longer than this without closing the file is loaded half
	// written there: publish by renaming a complete file into the
	// directory instead.
	Blind = 5 * time.Second
	// WriterPoll is how often a file that is still open for writing is
	// looked at again.
	WriterPoll = 20 * time.Millisecond
)

// Tracker holds the paths that changed and are waiting to settle.
type Tracker struct {
	// Quiet is how long a path must go without events before it is looked
	// at (bursts of writes coalesce). Zero: at once.
	Quiet time.Duration
	// Blind replaces the package's Blind when positive (tests).
	Blind time.Duration
	// Writing reports whether some process holds path open for writing,
	// and whether that could be known; nil means OpenForWriting.
	Writing func(path string) (open, known bool)
	// OnWait, if set, is called once per path that is found still open for
	// writing (or, where writers cannot be seen, still changing), with the
	// reason it waits.
	OnWait func(path, why string)

	pending map[string]*entry
}

type entry struct {
	event     time.Time // the last event
	stat      fileStat
	changedAt time.Time // when stat was last seen to differ
	told      bool      // OnWait was called
}

type fileStat struct {
	size  int64
	mtime time.Time
	ok    bool
}

func statOf(path string) fileStat {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStat{}
	}
	return fileStat{size: fi.Size(), mtime: fi.ModTime(), ok: true}
}

// Touch records an event for path at now.
func (t *Tracker) Touch(path string, now time.Time) {
	if t.pending == nil {
		t.pending = map[string]*entry{}
	}
	if e, ok := t.pending[path]; ok {
		e.event = now
		return
	}
	t.pending[path] = &entry{event: now, stat: statOf(path), changedAt: now}
}

// Forget drops path (it was handled some other way).
func (t *Tracker) Forget(path string) { delete(t.pending, path) }

// Len is how many paths wait.
func (t *Tracker) Len() int { return len(t.pending) }

// Paths are the paths that wait, in no order.
func (t *Tracker) Paths() []string {
	out := make([]string, 0, len(t.pending))
	for p := range t.pending {
		out = append(out, p)
	}
	return out
}

// Due removes and returns the paths that are ready at now — complete, or
// gone (the caller unloads what a gone path held) — and says how long until
// the next one may be (zero when none waits).
func (t *Tracker) Due(now time.Time) (ready []string, next time.Duration) {
	for p, e := range t.pending {
		wait := t.check(p, e, now)
		if wait <= 0 {
			delete(t.pending, p)
			ready = append(ready, p)
			continue
		}
		if next == 0 || wait < next {
			next = wait
		}
	}
	return ready, next
}

// check says how long path must still wait; zero or less: it is ready.
func (t *Tracker) check(path string, e *entry, now time.Time) time.Duration {
	if quiet := e.event.Add(t.Quiet).Sub(now); quiet > 0 {
		return quiet
	}
	st := statOf(path)
	if !st.ok {
		return 0
	}
	if st != e.stat {
		e.stat, e.changedAt = st, now
	}
	if open, known := t.writing(path); known {
		if !open {
			return 0
		}
		t.wait(path, e, "it is open for writing; it is loaded when its writer closes it")
		return WriterPoll
	}
	wait := t.stillFor(st, e, now)
	if wait > 0 {
		t.wait(path, e, "who writes it cannot be seen here; it is loaded once its size and modification time have held still for "+t.blind().String())
	}
	return wait
}

// stillFor is how much longer a file must hold still where writers cannot
// be seen: Blind after the later of its modification time (when that is
// not in the future) and the last time it was seen to change.
func (t *Tracker) stillFor(st fileStat, e *entry, now time.Time) time.Duration {
	last := e.changedAt
	if !st.mtime.After(now) && st.mtime.After(last) {
		last = st.mtime
	}
	if last.IsZero() {
		last = now
	}
	return last.Add(t.blind()).Sub(now)
}

// Ready reports whether path, found when a directory is scanned (no event
// seen for it), can be loaded now: no process has it open for writing, or,
// where that cannot be seen, it has not been modified for Blind. If not, it
// joins the paths that wait.
func (t *Tracker) Ready(path string, now time.Time) bool {
	e := &entry{event: now.Add(-t.Quiet), stat: statOf(path)}
	if t.check(path, e, now) <= 0 {
		return true
	}
	if t.pending == nil {
		t.pending = map[string]*entry{}
	}
	t.pending[path] = e
	return false
}

func (t *Tracker) wait(path string, e *entry, why string) {
	if !e.told && t.OnWait != nil {
		e.told = true
		t.OnWait(path, why)
	}
}

func (t *Tracker) writing(path string) (bool, bool) {
	if t.Writing != nil {
		return t.Writing(path)
	}
	return OpenForWriting(path)
}

func (t *Tracker) blind() time.Duration {
	if t.Blind > 0 {
		return t.Blind
	}
	return Blind
}
