package hotmod_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/settle"
)

// textstatsScript is a process module as a shell script: it runs the
// Python example, after running first (before the exec).
func textstatsScript(t *testing.T, first string) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
	py, err := filepath.Abs(filepath.Join("examples", "python", "textstats.py"))
	if err != nil {
		t.Fatal(err)
	}
	return "#!/bin/sh\n" + first + "\nexec python3 '" + py + "'\n"
}

// eventually waits for cond; a process module's start (python3 under
// -race, on a busy machine) can take seconds, and the directory is looked
// for every DirPoll.
func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func watchDir(t *testing.T, dir string, opts ...hotmod.Option) (*hotmod.Registry, *plugintest.Log) {
	t.Helper()
	logs := &plugintest.Log{}
	opts = append([]hotmod.Option{hotmod.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}, opts...)
	r := newRegistry(t, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := r.Watch(ctx, dir); err != nil {
		t.Fatal(err)
	}
	return r, logs
}

func moduleState(r *hotmod.Registry, artifact string) (hotmod.State, string) {
	for _, m := range r.Modules() {
		if m.Artifact == artifact && m.State != hotmod.StateDraining && m.State != hotmod.StateUnloaded {
			return m.State, m.Reason
		}
	}
	return hotmod.StateNone, ""
}

// writeHalves writes a process script in two halves through one open
// descriptor, pausing between them, and calls during(the pause). The first
// half ends in `touch MARKER`; the second turns that into `touch
// MARKER.complete`: a half-written script that is run leaves MARKER.
func writeHalves(t *testing.T, path, marker string, pause time.Duration, before, during func()) {
	t.Helper()
	script := textstatsScript(t, "touch '"+marker+".complete'")
	cut := strings.Index(script, ".complete")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(script[:cut-1] + "'\n"); err != nil { // `touch 'MARKER'` — the half that must never run
		t.Fatal(err)
	}
	if before != nil {
		before()
	}
	time.Sleep(pause)
	during()
	// Rewrite from the cut: the finished file is the whole script.
	if _, err := f.WriteAt([]byte(script[cut-1:]), int64(cut-1)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWatchLoadsOnlyCompleteFiles: a script written in two halves through
// one open descriptor, with a pause far longer than the settle time, is
// never run half written — neither when the watcher sees it being written
// nor when it is already open for writing as the directory is first
// scanned — and is loaded once its writer closes it.
func TestWatchLoadsOnlyCompleteFiles(t *testing.T) {
	dir, marks := t.TempDir(), t.TempDir()
	probe := filepath.Join(dir, ".probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, known := settle.OpenForWriting(probe); !known {
		t.Skip("writers cannot be seen here (not Linux, or no leases on this file system): files settle by holding still for 5s")
	}
	const pause = 500 * time.Millisecond
	notLoaded := func(r *hotmod.Registry, path, marker string) {
		t.Helper()
		if st, reason := moduleState(r, path); st != hotmod.StateNone {
			t.Fatalf("%s is %s (%s) while still open for writing", filepath.Base(path), st, reason)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the first half of the script was run")
		}
	}
	loaded := func(r *hotmod.Registry, path, marker string) {
		t.Helper()
		eventually(t, func() bool { st, _ := moduleState(r, path); return st == hotmod.StateActive })
		if _, err := os.Stat(marker + ".complete"); err != nil {
			t.Fatalf("the whole script did not run: %v", err)
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the first half of the script was run")
		}
	}

	// Open for writing when the directory is first scanned.
	first, firstMark := filepath.Join(dir, "first.process"), filepath.Join(marks, "first")
	var r *hotmod.Registry
	writeHalves(t, first, firstMark, pause, func() { r, _ = watchDir(t, dir) }, func() {
		notLoaded(r, first, firstMark)
		if ws := r.WatchStatus(); len(ws) != 1 || !ws[0].Watching || len(ws[0].Waiting) != 1 || ws[0].Waiting[0] != first {
			t.Errorf("WatchStatus while waiting: %+v", ws)
		}
	})
	loaded(r, first, firstMark)
	if err := os.Remove(first); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { st, _ := moduleState(r, first); return st == hotmod.StateNone })

	// Created while watched.
	second, secondMark := filepath.Join(dir, "second.process"), filepath.Join(marks, "second")
	writeHalves(t, second, secondMark, pause, nil, func() { notLoaded(r, second, secondMark) })
	loaded(r, second, secondMark)
}

// TestWatchRefusesUnsafeArtifacts: an executable without its execute bit,
// a launch file naming a program outside the directory that is not
// allowed, and an artifact over the size limit are refused, each saying
// what to do; the first loads once it is made executable.
func TestWatchRefusesUnsafeArtifacts(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "textstats.process")
	if err := os.WriteFile(noExec, []byte(textstatsScript(t, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	launch := filepath.Join(dir, "shell.process.json")
	if err := os.WriteFile(launch, []byte(`{"command": "sh", "args": ["-c", "echo pwned"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.wasm")
	if err := os.WriteFile(big, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	r, _ := watchDir(t, dir, hotmod.WithMaxArtifactSize(4000))
	for path, want := range map[string][]string{
		noExec: {"not executable", "chmod +x " + noExec},
		launch: {`command "sh"`, "outside the launch file's directory", "--allow-command sh"},
		big:    {"is 4096 bytes, more than the 4000", "--max-artifact-size"},
	} {
		st, reason := moduleState(r, path)
		if st != hotmod.StateFailed {
			t.Errorf("%s is %s, want Failed", filepath.Base(path), st)
		}
		for _, w := range want {
			if !strings.Contains(reason, w) {
				t.Errorf("%s: reason %q does not say %q", filepath.Base(path), reason, w)
			}
		}
	}
	if err := os.Chmod(noExec, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { st, _ := moduleState(r, noExec); return st == hotmod.StateActive })
}

// TestWatchSurvivesItsDirectory: a watched directory that is removed is
// reported (log and WatchStatus) and picked up again when it comes back;
// one renamed away keeps its modules serving until a directory of that name
// is back, which is then reconciled: what it lacks is unloaded, what it
// holds is loaded. Watch creates a missing directory.
func TestWatchSurvivesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "plugins")
	r, logs := watchDir(t, dir)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("Watch did not create the missing directory: %v", err)
	}
	script := []byte(textstatsScript(t, ""))
	path := filepath.Join(dir, "textstats.process")
	place := func() {
		t.Helper()
		tmp := filepath.Join(dir, ".textstats.process.tmp")
		if err := os.WriteFile(tmp, script, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	active := func() bool { st, _ := moduleState(r, path); return st == hotmod.StateActive }
	watching := func(want bool) func() bool {
		return func() bool { ws := r.WatchStatus(); return len(ws) == 1 && ws[0].Watching == want }
	}
	place()
	eventually(t, active)

	// Removed with what it holds, then made again.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	eventually(t, watching(false))
	eventually(t, func() bool { return !active() })
	if ws := r.WatchStatus(); !strings.Contains(ws[0].Reason, "missing") {
		t.Errorf("WatchStatus reason: %q", ws[0].Reason)
	}
	if !strings.Contains(logs.String(), "level=WARN msg=\"the module directory is gone") {
		t.Errorf("no warning logged:\n%s", logs)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	place()
	eventually(t, watching(true))
	eventually(t, active)

	// Renamed away: it keeps serving; the directory made in its place
	// lacks the file, so it is unloaded, and loaded when the file is there.
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	eventually(t, watching(false))
	if !active() {
		t.Fatal("a module whose directory was renamed away stopped serving")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	eventually(t, watching(true))
	eventually(t, func() bool { return !active() })
	place()
	eventually(t, active)
}
