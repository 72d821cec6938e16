package build_test

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// pluginPath returns the plugin path of a Go plugin: the prefix of its
// exported Module symbol ("plugin/unnamed-<hash>.Module").
func pluginPath(t *testing.T, so string) string {
	t.Helper()
	f, err := elf.Open(so)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if p, ok := strings.CutSuffix(s.Name, ".Module"); ok && strings.HasPrefix(p, "plugin/") {
			return p
		}
	}
	t.Fatalf("%s exports no <pluginpath>.Module symbol", so)
	return ""
}

func TestNative(t *testing.T) {
	v1 := plugintest.Example(t, "greeter")
	v2 := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "2.0.0"`)
	out := t.TempDir()
	var log bytes.Buffer
	ctx := t.Context()

	so1, err := build.Native(ctx, build.Options{Dir: v1, Out: out, Stderr: &log})
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(out, "greeter.so"); so1 != want {
		t.Errorf("artifact at %s, want %s", so1, want)
	}
	so2, err := build.Native(ctx, build.Options{Dir: v2, Out: out, Name: "greeter-2"})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"greeter-2.so", "greeter.so"}) {
		t.Errorf("output directory holds %q, want only the two artifacts", names)
	}

	// Build info: what the host compares before loading.
	goVersion, _ := build.HostToolchain()
	for _, so := range []string{so1, so2} {
		bi, err := buildinfo.ReadFile(so)
		if err != nil {
			t.Fatal(err)
		}
		settings := map[string]string{}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
		if bi.GoVersion != goVersion || bi.Path != "command-line-arguments" ||
			settings["-buildmode"] != "plugin" || settings["CGO_ENABLED"] != "1" {
			t.Errorf("%s: build info %v", so, bi)
		}
		rep, err := native.Preflight(so)
		if err != nil || len(rep.Problems) > 0 {
			t.Errorf("Preflight(%s) = %+v, %v", so, rep, err)
		}
	}

	// A file-list build gets a plugin path of its own per source.
	p1, p2 := pluginPath(t, so1), pluginPath(t, so2)
	if !strings.HasPrefix(p1, "plugin/unnamed-") || p1 == p2 {
		t.Errorf("plugin paths %q and %q, want two distinct plugin/unnamed-… paths", p1, p2)
	}

	// Both load into this process, side by side.
	l := native.NewLoader(t.TempDir(), nil)
	for so, version := range map[string]string{so1: "1.0.0", so2: "2.0.0"} {
		inst, err := l.Load(ctx, so)
		if err != nil {
			t.Fatal(err)
		}
		out, err := inst.Invoke(ctx, "hello", map[string]any{"name": "Ada"})
		if err != nil || out["message"] != "hello, Ada" || inst.Manifest().Version != version {
			t.Errorf("%s: %s hello = %v, %v", so, inst.Manifest().Version, out, err)
		}
	}
}

func TestNativeErrors(t *testing.T) {
	ctx := context.Background()
	broken := plugintest.Source(t, "package main\n\nfunc main() { undefinedThing() }\n")
	_, err := build.Native(ctx, build.Options{Dir: broken, Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "undefined: undefinedThing") || !strings.Contains(err.Error(), "-buildmode=plugin") {
		t.Errorf("compile error: %v, want the go command and its output", err)
	}

	empty := t.TempDir()
	if _, err := build.Native(ctx, build.Options{Dir: empty}); err == nil || !strings.Contains(err.Error(), "no Go source files") {
		t.Errorf("empty dir: %v", err)
	}

	withC := plugintest.Source(t, "package main\n\nfunc main() {}\n")
	if err := os.WriteFile(filepath.Join(withC, "helper.c"), []byte("int x;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := build.Native(ctx, build.Options{Dir: withC}); err == nil || !strings.Contains(err.Error(), "helper.c") {
		t.Errorf("dir with C sources: %v", err)
	}

	if _, err := build.Native(ctx, build.Options{}); err == nil {
		t.Error("no Dir: no error")
	}
}

func TestHostToolchain(t *testing.T) {
	v, flags := build.HostToolchain()
	if v != runtime.Version() {
		t.Errorf("HostToolchain version %q, want %q", v, runtime.Version())
	}
	for _, f := range flags {
		if !strings.HasPrefix(f, "-") {
			t.Errorf("flag %q", f)
		}
	}
	t.Logf("host toolchain %s, flags %q", v, flags)
}
