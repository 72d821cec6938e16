package settle

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"
)

// TestOpenForWriting: a file held open for writing is seen as such until
// it is closed; readers do not count.
func TestOpenForWriting(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("writers are seen on Linux only")
	}
	path := filepath.Join(t.TempDir(), "a.wasm")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString("first half"); err != nil {
		t.Fatal(err)
	}
	if open, known := OpenForWriting(path); !open || !known {
		t.Fatalf("open for writing: OpenForWriting = %v, %v", open, known)
	}
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	w.Close()
	if open, known := OpenForWriting(path); open || !known {
		t.Fatalf("closed (a reader left): OpenForWriting = %v, %v", open, known)
	}
}

// TestTrackerWaitsForTheWriter: a changed path is not due while it is open
// for writing, however long it has been quiet; it is due once closed.
func TestTrackerWaitsForTheWriter(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("writers are seen on Linux only")
	}
	path := filepath.Join(t.TempDir(), "a.process")
	w, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	var waited []string
	tr := &Tracker{Quiet: 10 * time.Millisecond, OnWait: func(p, why string) { waited = append(waited, p+": "+why) }}
	now := time.Now()
	tr.Touch(path, now)
	if ready, next := tr.Due(now); len(ready) != 0 || next != 10*time.Millisecond {
		t.Fatalf("at once: ready %v, next %v", ready, next)
	}
	later := now.Add(time.Hour)
	if ready, next := tr.Due(later); len(ready) != 0 || next != WriterPoll {
		t.Fatalf("open an hour later: ready %v, next %v", ready, next)
	}
	tr.Due(later)
	if len(waited) != 1 {
		t.Fatalf("OnWait calls: %q", waited)
	}
	w.Close()
	if ready, next := tr.Due(later); !slices.Equal(ready, []string{path}) || next != 0 || tr.Len() != 0 {
		t.Fatalf("closed: ready %v, next %v, %d waiting", ready, next, tr.Len())
	}

	// Found by a scan while open: it waits.
	w2, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Ready(path, later) || tr.Len() != 1 {
		t.Fatal("a file open for writing is ready at a scan")
	}
	w2.Close()
	if ready, _ := tr.Due(later); len(ready) != 1 {
		t.Fatalf("closed after the scan: ready %v", ready)
	}
	if !tr.Ready(path, later) {
		t.Fatal("a closed file is not ready at a scan")
	}
}

// TestTrackerBlind: where writers cannot be seen, a path is due once its
// size and modification time have held still for Blind; a change starts
// the wait again. A path that is gone is due at once.
func TestTrackerBlind(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.wasm")
	if err := os.WriteFile(path, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	blind := time.Second
	tr := &Tracker{Blind: blind, Writing: func(string) (bool, bool) { return false, false }}
	now := time.Now()
	tr.Touch(path, now)
	if ready, next := tr.Due(now.Add(blind / 2)); len(ready) != 0 || next <= 0 || next > blind/2+50*time.Millisecond {
		t.Fatalf("half way: ready %v, next %v", ready, next)
	}
	// The writer appends; its modification time moves on.
	if err := os.WriteFile(path, []byte("half and the rest"), 0o644); err != nil {
		t.Fatal(err)
	}
	mtime := time.Now()
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	seen := mtime.Add(blind / 2) // the change is seen here
	if ready, _ := tr.Due(seen); len(ready) != 0 {
		t.Fatalf("changed half a Blind ago: ready %v", ready)
	}
	if ready, _ := tr.Due(seen.Add(blind - time.Millisecond)); len(ready) != 0 {
		t.Fatalf("still for less than Blind since the change was seen: ready %v", ready)
	}
	if ready, _ := tr.Due(seen.Add(blind)); len(ready) != 1 {
		t.Fatalf("still for Blind: ready %v", ready)
	}

	// A scan: an old file is ready, a fresh one waits.
	old := mtime.Add(-2 * blind)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	if !tr.Ready(path, mtime) {
		t.Fatal("a file untouched for longer than Blind is not ready at a scan")
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if tr.Ready(path, mtime.Add(blind/2)) {
		t.Fatal("a file modified half a Blind ago is ready at a scan")
	}

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if ready, _ := tr.Due(mtime.Add(blind / 2)); len(ready) != 1 {
		t.Fatalf("gone: ready %v", ready)
	}
}

// BenchmarkOpenForWriting is the cost of one look at a file that waits
// (done every WriterPoll while its writer holds it open).
func BenchmarkOpenForWriting(b *testing.B) {
	path := filepath.Join(b.TempDir(), "a.so")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		OpenForWriting(path)
	}
}
