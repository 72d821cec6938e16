package hotmod

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hotmod/hotmod/internal/settle"
	"github.com/hotmod/hotmod/sdk"
)

// DirPoll is how often a watched directory is looked for: while it is
// missing, to pick it up again when it comes back, and while it is there,
// to notice it was replaced by another directory of the same name.
const DirPoll = time.Second

// Watch loads every artifact in dir, then keeps the registry in step with the
// directory until ctx ends: a new or changed artifact is loaded (replacing the
// version its file held before), a removed one is unloaded. A missing dir is
// created (mode 0755). Watch returns once the first scan is done; failures
// after that are reported as events, log lines and Failed entries in
// Modules, never by stopping the watch.
//
// A file is loaded only once it is complete (see WithSettle): on Linux, not
// while any process holds it open for writing. Hidden files (".name"),
// editor backups ("name~") and files ending in ".tmp" are ignored, so
// writing to a hidden temporary name and renaming it into place publishes
// an artifact atomically. A symlink whose target lies outside dir is
// refused.
//
// When dir disappears (removed, or renamed away) the watch says so in a
// warning and in WatchStatus, and looks for it every DirPoll; the modules
// already loaded keep serving. When a directory of that name is back, its
// artifacts are loaded and those loaded from dir before that it no longer
// holds are unloaded.
//
// A signature file X.sig (see WithTrustedKeys) is not an artifact: when it
// appears or changes, X is considered again.
func (r *Registry) Watch(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Stat(abs); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return fmt.Errorf("watch %s: creating it: %w", dir, err)
		}
		r.cfg.logger.Info("created the module directory", "dir", abs)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return fmt.Errorf("watch %s: not a directory", dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	d := &dirWatch{r: r, dir: abs, real: real, w: w}
	d.pending = &settle.Tracker{Quiet: r.cfg.settle, Blind: max(r.cfg.settle, settle.Blind), OnWait: func(path, why string) {
		r.cfg.logger.Info("waiting for an artifact to be complete", "artifact", path, "reason", why)
	}}
	if err := d.attach(); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	if err := d.scan(ctx); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	r.restoreKept(ctx) // stable versions whose files now hold other builds
	d.state = WatchState{Dir: abs, Watching: true, Since: time.Now()}
	r.watches.add(d)
	go d.run(ctx)
	return nil
}

// WatchState is the state of one directory given to Watch.
type WatchState struct {
	Dir string `json:"dir"`
	// Watching is false while the directory is missing; modules loaded
	// from it keep serving meanwhile.
	Watching bool      `json:"watching"`
	Since    time.Time `json:"since"`            // when Watching last changed
	Reason   string    `json:"reason,omitempty"` // why it is not watched
	// Waiting lists the artifacts that changed and are not complete yet
	// (still open for writing, say).
	Waiting []string `json:"waiting,omitempty"`
}

// WatchStatus says, for every directory a Watch keeps in step (until its
// context ends), whether it is watched now. A readiness check can use it:
// a directory that is gone means new artifacts are not being picked up.
func (r *Registry) WatchStatus() []WatchState {
	return r.watches.states()
}

// watchSet is the registry's running watches.
type watchSet struct {
	mu  sync.Mutex
	all []*dirWatch
}

func (s *watchSet) add(d *dirWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, d)
}

func (s *watchSet) remove(d *dirWatch) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, o := range s.all {
		if o == d {
			s.all = append(s.all[:i], s.all[i+1:]...)
			return
		}
	}
}

func (s *watchSet) states() []WatchState {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]WatchState, 0, len(s.all))
	for _, d := range s.all {
		d.mu.Lock()
		st := d.state
		st.Waiting = append([]string(nil), d.waiting...)
		d.mu.Unlock()
		out = append(out, st)
	}
	return out
}

type dirWatch struct {
	r         *Registry
	dir, real string
	w         *fsnotify.Watcher
	ident     os.FileInfo // the directory watched, to notice a replacement

	// pending and gone are the run goroutine's (and Watch's before it).
	pending *settle.Tracker
	gone    bool

	mu      sync.Mutex // guards state and waiting, read by WatchStatus
	state   WatchState
	waiting []string
}

// attach starts watching the directory now at d.dir.
func (d *dirWatch) attach() error {
	fi, err := os.Stat(d.dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", d.dir)
	}
	real, err := filepath.EvalSymlinks(d.dir)
	if err != nil {
		return err
	}
	_ = d.w.Remove(d.dir) // a watch left from the directory before, if any
	if err := d.w.Add(d.dir); err != nil {
		return err
	}
	d.ident, d.real = fi, real
	return nil
}

// wanted reports whether name is an artifact the watcher handles.
func (d *dirWatch) wanted(path string) bool {
	base := filepath.Base(path)
	if strings.HasPrefix(base, ".") || strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".tmp") {
		return false
	}
	_, ok := transportOf(path)
	return ok
}

// scan loads the complete artifacts in the directory (those still being
// written wait), and unloads the ones loaded from it that it no longer
// holds.
func (d *dirWatch) scan(ctx context.Context) error {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	now := time.Now()
	for _, e := range entries {
		p := filepath.Join(d.dir, e.Name())
		if !d.wanted(p) {
			continue
		}
		present[p] = true
		if d.pending.Ready(p, now) {
			d.sync(ctx, p)
		}
	}
	for _, m := range d.r.Modules() {
		if m.Artifact != "" && filepath.Dir(m.Artifact) == d.dir && !present[m.Artifact] {
			d.r.unloadArtifact(m.Artifact)
		}
	}
	d.noteWaiting()
	return nil
}

func (d *dirWatch) run(ctx context.Context) {
	defer d.w.Close()
	defer d.r.watches.remove(d)
	poll := time.NewTicker(DirPoll)
	defer poll.Stop()
	// due fires while paths wait to settle, at the earliest time one of
	// them may be ready (zero deadline: stopped).
	due := time.NewTimer(time.Hour)
	due.Stop()
	var deadline time.Time
	arm := func(after time.Duration) {
		at := time.Now().Add(max(after, time.Millisecond))
		if deadline.IsZero() || at.Before(deadline) {
			due.Reset(time.Until(at))
			deadline = at
		}
	}
	if d.pending.Len() > 0 {
		arm(settle.WriterPoll)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-d.w.Errors:
			if !ok {
				return
			}
			d.r.cfg.logger.Error("watching modules", "dir", d.dir, "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) && !d.gone {
				_ = d.scan(ctx) // events were lost: look at everything again
				if d.pending.Len() > 0 {
					arm(d.r.cfg.settle)
				}
			}
		case ev, ok := <-d.w.Events:
			if !ok {
				return
			}
			if ev.Name == d.dir {
				if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
					d.lost("it was removed or renamed")
				}
				continue
			}
			for _, p := range d.affected(ev.Name) { // the file, or what its signature signs
				d.pending.Touch(p, time.Now())
				arm(d.r.cfg.settle)
			}
		case now := <-due.C:
			deadline = time.Time{}
			ready, next := d.pending.Due(now)
			sort.Strings(ready)
			for _, p := range ready {
				d.sync(ctx, p)
			}
			if next > 0 {
				arm(next)
			}
			d.noteWaiting()
		case <-poll.C:
			d.check(ctx)
			if d.pending.Len() > 0 {
				arm(d.r.cfg.settle)
			}
		}
	}
}

// check looks at the directory: gone, replaced, or back.
func (d *dirWatch) check(ctx context.Context) {
	fi, err := os.Stat(d.dir)
	switch {
	case !d.gone && err != nil:
		d.lost(err.Error())
	case !d.gone && !os.SameFile(fi, d.ident):
		d.lost("another directory took its place")
		d.check(ctx)
	case d.gone && err == nil && fi.IsDir():
		if err := d.attach(); err != nil {
			d.r.cfg.logger.Warn("the module directory is back but cannot be watched; trying again", "dir", d.dir, "error", err, "every", DirPoll)
			return
		}
		d.gone = false
		d.r.cfg.logger.Info("the module directory is back: watching it again", "dir", d.dir)
		d.setState(true, "")
		if err := d.scan(ctx); err != nil {
			d.r.cfg.logger.Warn("scanning the module directory", "dir", d.dir, "error", err)
		}
	}
}

// lost records that the directory is gone.
func (d *dirWatch) lost(why string) {
	if d.gone {
		return
	}
	d.gone = true
	_ = d.w.Remove(d.dir)
	d.r.cfg.logger.Warn("the module directory is gone: new artifacts are not picked up until it is back; the modules loaded from it keep serving",
		"dir", d.dir, "reason", why, "looked_for_every", DirPoll)
	d.setState(false, "the directory is missing: "+why)
}

func (d *dirWatch) setState(watching bool, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.state = WatchState{Dir: d.dir, Watching: watching, Since: time.Now(), Reason: reason}
}

// noteWaiting publishes the paths that wait to settle, for WatchStatus.
func (d *dirWatch) noteWaiting() {
	paths := d.pending.Paths()
	sort.Strings(paths)
	d.mu.Lock()
	d.waiting = paths
	d.mu.Unlock()
}

// sync makes the registry match the file at path: load it, or unload what
// it held when it is gone.
func (d *dirWatch) sync(ctx context.Context, path string) {
	fi, err := os.Lstat(path)
	if err != nil {
		d.r.unloadArtifact(path)
		return
	}
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			d.r.unloadArtifact(path)
			return
		}
		if rel, err := filepath.Rel(d.real, target); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			t, _ := transportOf(path)
			d.r.failArtifact(path, t, sdk.Errorf(sdk.CodeIncompatible,
				"%s is a symlink to %s, outside the watched directory %s: copy the artifact into the directory instead", path, target, d.dir), nil, nil)
			return
		}
	} else if !fi.Mode().IsRegular() {
		return
	}
	_, _ = d.r.Load(ctx, path) // failures are recorded and reported by Load
}
