package statedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesAtomically(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(d.Path()); fi.Mode().Perm() != 0o700 {
		t.Fatalf("mode %v, want 0700", fi.Mode().Perm())
	}
	for _, s := range []string{"one", "two"} {
		if err := d.WriteFile("f.json", []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, _ := d.ReadFile("f.json"); string(b) != s {
			t.Fatalf("read %q, want %q", b, s)
		}
	}
	entries, _ := os.ReadDir(d.Path())
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
	if fi, _ := os.Stat(d.File("f.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
}

func TestOpenRefusesOpenPermissions(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("got %v, want a refusal that says chmod 700", err)
	}
}

func TestLockNamesTheHolder(t *testing.T) {
	d, err := Open(t.TempDir() + "/s")
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := d.Lock("the directory")
	if err != nil {
		t.Fatal(err)
	}
	// A second open file description in this process conflicts too.
	if _, err := d.Lock("the directory"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid ") {
		t.Fatalf("second lock: %v", err)
	}
	unlock()
	unlock2, err := d.Lock("the directory")
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
}
