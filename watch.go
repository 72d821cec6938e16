package hotmod

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/hotmod/hotmod/sdk"
)

// Watch loads every artifact in dir, then keeps the registry in step with the
// directory until ctx ends: a new or changed artifact is loaded (replacing the
// version its file held before), a removed one is unloaded. It returns once
// the first scan is done; failures after that are reported as events, log
// lines and Failed entries in Modules, never by stopping the watch.
//
// A file is loaded only once it has settled (see WithSettle). Hidden files
// (".name"), editor backups ("name~") and files ending in ".tmp" are
// ignored, so writing to a hidden temporary name and renaming it into place
// publishes an artifact atomically. A symlink whose target lies outside dir
// is refused.
func (r *Registry) Watch(ctx context.Context, dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
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
	if err := w.Add(abs); err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	d := &dirWatch{r: r, dir: abs, real: real, w: w, pending: map[string]pending{}}
	entries, err := os.ReadDir(abs)
	if err != nil {
		w.Close()
		return fmt.Errorf("watch %s: %w", dir, err)
	}
	for _, e := range entries {
		if p := filepath.Join(abs, e.Name()); d.wanted(p) {
			d.sync(ctx, p)
		}
	}
	go d.run(ctx)
	return nil
}

type dirWatch struct {
	r         *Registry
	dir, real string
	w         *fsnotify.Watcher
	pending   map[string]pending // changed paths, waiting to settle
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

func (d *dirWatch) run(ctx context.Context) {
	defer d.w.Close()
	settle := d.r.cfg.settle
	tick := time.NewTicker(max(settle/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case err, ok := <-d.w.Errors:
			if !ok {
				return
			}
			d.r.cfg.logger.Error("watching modules", "dir", d.dir, "err", err)
		case ev, ok := <-d.w.Events:
			if !ok {
				return
			}
			if d.wanted(ev.Name) {
				d.pending[ev.Name] = pending{at: time.Now(), stat: statOf(ev.Name)}
			}
		case now := <-tick.C:
			for p, pd := range d.pending {
				if now.Sub(pd.at) < settle {
					continue
				}
				// No event for a settle period. A writer that pauses without
				// closing the file sends none either, so the size and mtime
				// must also be what they were at the last event.
				if st := statOf(p); st != pd.stat {
					d.pending[p] = pending{at: now, stat: st}
					continue
				}
				delete(d.pending, p)
				d.sync(ctx, p)
			}
		}
	}
}

// pending is a path that changed, waiting to settle.
type pending struct {
	at   time.Time
	stat fileStat
}

type fileStat struct {
	size  int64
	mtime int64
	ok    bool
}

func statOf(path string) fileStat {
	fi, err := os.Lstat(path)
	if err != nil {
		return fileStat{}
	}
	return fileStat{size: fi.Size(), mtime: fi.ModTime().UnixNano(), ok: true}
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
