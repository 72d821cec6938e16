package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestBuildWait builds into the directory a real daemon watches with
// `hotmod build --wait`: a good module is named after its manifest (not its
// package directory) and build says it is active; a version the daemon
// refuses (a breaking change of the contract under a minor bump), built to
// an -o FILE, makes build exit 1 with the daemon's reason.
func TestBuildWait(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and two native modules)")
	}
	plugins := t.TempDir()
	d := startDaemon(t, plugins)

	// The package directory is not named after the module.
	src := plugintest.Example(t, "pricing")
	renamed := filepath.Join(filepath.Dir(src), "pricing-src")
	if err := os.Rename(src, renamed); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, nil, "build", "--wait", "--addr", d.addr, "-o", plugins, renamed)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if want := filepath.Join(plugins, "pricing.so"); lines[0] != want {
		t.Errorf("hotmod build printed %q first, want the artifact named after the module, %s", lines[0], want)
	}
	if !strings.Contains(r.stdout, "pricing@1.1.0 is active") {
		t.Errorf("hotmod build --wait did not say the version is active: %s", r)
	}

	// Dropping the "code" alias breaks callers that still send it: the
	// daemon refuses it under a minor bump.
	sneaky := plugintest.Example(t, "pricing", `const version = "1.1.0"`, `const version = "1.2.0"`,
		`alias=code|voucher`, `alias=voucher`)
	file := filepath.Join(plugins, "pricing-next.so")
	r = hotmodRun(t, nil, "", "build", "--wait", "--addr", d.addr, "-o", file, sneaky)
	if r.code != 1 || !strings.Contains(r.stderr, "the daemon refused pricing@1.2.0") || !strings.Contains(r.stderr, "code") {
		t.Errorf("hotmod build --wait of a refused version: %s\nwant exit 1 and the daemon's reason", r)
	}
	if got := strings.TrimSpace(r.stdout); got != file {
		t.Errorf("hotmod build -o FILE printed %q, want %s", got, file)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("-o FILE: %v", err)
	}

	// Built where the daemon does not look: no verdict, and build says so.
	elsewhere := t.TempDir()
	r = hotmodRun(t, nil, "", "build", "--wait", "--wait-timeout", "1s", "--addr", d.addr, "-o", elsewhere, renamed)
	if r.code != 1 || !strings.Contains(r.stderr, "no verdict on pricing@1.1.0 within 1s") || !strings.Contains(r.stderr, "in the directory the daemon") {
		t.Errorf("hotmod build --wait into a directory no daemon watches: %s\nwant exit 1 and a timeout that says where to look", r)
	}
}

// TestBuildWaitRollout: a new version that a rollout policy starts as a
// canary, or keeps Standby until promoted, is accepted, and build --wait
// says which.
func TestBuildWaitRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and two native modules)")
	}
	plugins := t.TempDir()
	d := startDaemon(t, plugins, "--rollout", "canary", "--canary-steps", "10,100", "--canary-interval", "1h", "--rollout-for", "pricing=manual")
	env := []string{"HOTMOD_ADDR=" + d.addr}
	if r := mustRun(t, env, "build", "--wait", "-o", plugins, plugintest.Example(t, "greeter")); !strings.Contains(r.stdout, "greeter@1.0.0 is active") {
		t.Errorf("the first version: %s", r)
	}
	next := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "1.1.0"`)
	if r := mustRun(t, env, "build", "--wait", "-o", filepath.Join(plugins, "greeter-next.so"), next); !strings.Contains(r.stdout, "greeter@1.1.0 is a canary at 10 %") {
		t.Errorf("the canary: %s", r)
	}

	mustRun(t, env, "build", "--wait", "-o", plugins, plugintest.Example(t, "pricing"))
	candidate := plugintest.Example(t, "pricing", `const version = "1.1.0"`, `const version = "1.2.0"`)
	if r := mustRun(t, env, "build", "--wait", "-o", filepath.Join(plugins, "pricing-next.so"), candidate); !strings.Contains(r.stdout, "pricing@1.2.0 waits Standby until hotmod promote pricing") {
		t.Errorf("the candidate of a manual rollout: %s", r)
	}
}
