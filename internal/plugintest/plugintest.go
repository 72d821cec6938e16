// Package plugintest builds real hotmod module artifacts for tests.
//
// Example and Source write a module into a fresh temporary Go module whose
// go.mod requires the repository's sdk through a replace directive (go 1.22,
// so older toolchains can build it too); Build turns it into a native plugin
// with build.Native, the way `hotmod build` does. Nothing is cached between
// calls: each call makes a new directory, and the Go build cache and the
// relocation cache (<user cache dir>/hotmod/relocate) are the only things
// shared.
//
//	dir := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "2.0.0"`)
//	so := plugintest.Build(t, dir)                          // matches the test binary
//	old := plugintest.Build(t, dir, "GOTOOLCHAIN=go1.25.5") // a toolchain the host must refuse
//
// A test binary that loads native plugins cannot use -coverpkg over the sdk
// (the sdk would differ from the plugins' copy).
package plugintest

import (
	"bufio"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hotmod/hotmod/internal/build"
)

const (
	repoModule = "github.com/hotmod/hotmod"
	sdkModule  = repoModule + "/sdk"
	// modulePrefix + name is the module path of a temporary module.
	modulePrefix = "hotmodtest.example/"
)

// Repo returns the repository root, found from this source file's location
// (or, in a -trimpath build, by walking up from the working directory to the
// go.mod of module github.com/hotmod/hotmod).
func Repo(t testing.TB) string {
	t.Helper()
	if _, file, _, ok := runtime.Caller(0); ok && filepath.IsAbs(file) {
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		if isRepo(root) {
			return root
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return ""
	}
	for {
		if isRepo(dir) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("plugintest: cannot find the root of module %s from %s", repoModule, dir)
			return ""
		}
		dir = parent
	}
}

func isRepo(dir string) bool {
	f, err := os.Open(filepath.Join(dir, "go.mod"))
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`) == repoModule
		}
	}
	return false
}

// Example copies examples/<name> into a fresh temporary module, applies the
// edits to its main.go and returns the new module's directory. Edits are
// pairs of old and new strings; every occurrence of old is replaced, and an
// old string that main.go lacks fails the test. The copy is a module of its
// own, hotmodtest.example/<name>: imports of the example's own packages
// (github.com/hotmod/hotmod/examples/<name>/…) are rewritten to it, and its
// go.mod requires what examples/go.mod requires, with examples/go.sum.
func Example(t testing.TB, name string, edits ...string) string {
	t.Helper()
	if len(edits)%2 != 0 {
		t.Fatalf("plugintest.Example(%q): edits come in old,new pairs; got %d strings", name, len(edits))
		return ""
	}
	src := filepath.Join(Repo(t), "examples", name)
	dir := newModule(t, name)
	requireExamplesDeps(t, dir)
	ownImports := []byte(`"` + repoModule + "/examples/" + name + "/")
	copyImports := []byte(`"` + modulePrefix + name + "/")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		case rel == "go.mod" || rel == "go.sum" || !d.Type().IsRegular():
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.HasSuffix(rel, ".go") {
			data = bytes.ReplaceAll(data, ownImports, copyImports)
		}
		return os.WriteFile(filepath.Join(dir, rel), data, 0o644)
	})
	if err != nil {
		t.Fatalf("plugintest: copying example %q: %v", name, err)
		return ""
	}
	Edit(t, dir, "main.go", edits...)
	return dir
}

// Source writes mainGo as the main.go of a fresh temporary module and
// returns the module's directory.
func Source(t testing.TB, mainGo string) string {
	t.Helper()
	dir := newModule(t, "module")
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
		t.Fatalf("plugintest: %v", err)
		return ""
	}
	return dir
}

// newModule makes a temporary directory holding a go.mod that requires the
// repository's sdk.
func newModule(t testing.TB, name string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("plugintest: %v", err)
		return ""
	}
	goMod := "module " + modulePrefix + name + "\n\ngo 1.22\n\n" +
		"require " + sdkModule + " v0.0.0\n\n" +
		"replace " + sdkModule + " => " + filepath.Join(Repo(t), "sdk") + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatalf("plugintest: %v", err)
		return ""
	}
	return dir
}

// Build builds the module in dir as a native plugin into a temporary
// directory and returns the artifact's path. env is extra environment for the
// go command ("GOTOOLCHAIN=go1.25.5", "GOFLAGS=-race", …); without it the
// artifact matches the running test binary. A failed build fails the test
// with the go command's output.
func Build(t testing.TB, dir string, env ...string) string {
	t.Helper()
	return buildWith(t, build.Native, dir, env)
}

// buildWith runs one of package build's builders on dir into a temporary
// directory, failing the test with the go command's output.
func buildWith(t testing.TB, builder func(context.Context, build.Options) (string, error), dir string, env []string) string {
	t.Helper()
	path, err := builder(t.Context(), build.Options{
		Dir: dir,
		Out: t.TempDir(),
		// The temporary module lives outside any workspace, but a go.work
		// higher up (GOWORK in the environment) must not capture it.
		Env: append([]string{"GOWORK=off"}, env...),
	})
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	return path
}

// Log is a goroutine-safe sink for what a loader under test logs: give it
// to slog.NewTextHandler and read it back with String.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns everything logged so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
