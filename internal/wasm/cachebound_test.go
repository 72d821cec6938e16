package wasm_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/wasm"
)

// seedCache copies the compiled code of the artifact at path from the
// shared cache into the cache dir (a cold compile takes a minute under
// -race), last used at age ago, and returns the copy's path and size.
func seedCache(t *testing.T, dir, path string, age time.Duration) (string, int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src := wasm.CacheEntry(cacheDir, data, wasm.TierInterruptible)
	if src == "" {
		precompile(t, path, wasm.TierInterruptible)
		if !raceEnabled {
			l, _ := newLoader(t, wasm.Config{PoolSize: 1})
			load(t, l, path).Close()
		}
		if src = wasm.CacheEntry(cacheDir, data, wasm.TierInterruptible); src == "" {
			t.Fatalf("no cache entry for %s in %s: does this wazero name its cache files as entryOf expects?", path, cacheDir)
		}
	}
	dst := filepath.Join(dir, string(wasm.TierInterruptible), filepath.Base(filepath.Dir(src)), filepath.Base(src))
	copyFile(t, src, dst)
	old := time.Now().Add(-age)
	if err := os.Chtimes(dst, old, old); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		t.Fatal(err)
	}
	return dst, fi.Size()
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// The compilation cache keeps under its limit by removing the least
// recently loaded entries (another wazero version's first), never one a
// loaded version uses, nor a file wazero is still writing; when the
// entries in use alone are over the limit, it says so.
func TestCacheBound(t *testing.T) {
	a, b := source(t, "testguest", testGuest), source(t, "loner", lonerGuest)
	dir := t.TempDir()
	entryB, sizeB := seedCache(t, dir, b, time.Hour)
	entryA, sizeA := seedCache(t, dir, a, time.Minute)
	stale := filepath.Join(dir, "wazero-v0.0.1-amd64-linux", strings.Repeat("ab", 32))
	if err := os.MkdirAll(filepath.Dir(stale), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stale, make([]byte, 4<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	_ = os.Chtimes(stale, old, old)
	writing := entryB + ".1234.tmp"
	if err := os.WriteFile(writing, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}

	l, lg := newLoader(t, wasm.Config{PoolSize: 1, CacheDir: dir, CacheLimit: sizeA + sizeB/2})
	ia := load(t, l, a)
	if got := ia.CacheEntries(); len(got) != 1 || got[0] != entryA {
		t.Fatalf("the version's cache entries are %q, want [%s]: does this wazero name its cache files as entryOf expects?", got, entryA)
	}
	if fi, err := os.Stat(entryA); err != nil || time.Since(fi.ModTime()) > time.Minute/2 {
		t.Errorf("the loaded entry was not touched: %v", err)
	}
	if exists(stale) || exists(entryB) || !exists(entryA) || !exists(writing) {
		t.Errorf("after loading a: stale %t, b %t, a %t, being written %t; want only a and the file being written left",
			exists(stale), exists(entryB), exists(entryA), exists(writing))
	}
	if !strings.Contains(lg.String(), "wasm compilation cache trimmed") {
		t.Errorf("the trim is not logged:\n%s", lg.String())
	}

	// Both loaded: over the limit, but nothing may go.
	entryB, _ = seedCache(t, dir, b, time.Hour)
	ib := load(t, l, b)
	if !exists(entryA) || !exists(entryB) {
		t.Errorf("an entry in use was removed: a %t, b %t", exists(entryA), exists(entryB))
	}
	if !strings.Contains(lg.String(), "the code of the loaded versions alone is over the limit") {
		t.Errorf("no warning that the entries in use exceed the limit:\n%s", lg.String())
	}

	// a unloaded: the next load removes it.
	ia.Close()
	ib2, err := l.Load(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	defer ib2.Close()
	if exists(entryA) || !exists(entryB) {
		t.Errorf("after a was unloaded and b loaded again: a %t, b %t; want only b", exists(entryA), exists(entryB))
	}
	_ = ib
}
