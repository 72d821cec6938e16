package plugintest_test

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
)

func TestRepo(t *testing.T) {
	root := plugintest.Repo(t)
	for _, p := range []string{"go.mod", "sdk/go.mod", "examples/greeter/main.go"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("Repo() = %s: %v", root, err)
		}
	}
}

func TestExample(t *testing.T) {
	dir := plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "2.0.0"`)
	main, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(main), `const version = "2.0.0"`) || strings.Contains(string(main), `"1.0.0"`) {
		t.Errorf("edit not applied:\n%s", main)
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"go 1.22", "require github.com/hotmod/hotmod/sdk v0.0.0",
		"replace github.com/hotmod/hotmod/sdk => " + filepath.Join(plugintest.Repo(t), "sdk")} {
		if !strings.Contains(string(goMod), want) {
			t.Errorf("go.mod lacks %q:\n%s", want, goMod)
		}
	}
}

// fatalTB records Fatalf instead of stopping the test.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestExampleMissingEdit(t *testing.T) {
	for _, edits := range [][]string{{"no such text", "x"}, {"odd"}} {
		tb := &fatalTB{TB: t}
		plugintest.Example(tb, "greeter", edits...)
		if tb.msg == "" {
			t.Errorf("Example with edits %q did not fail the test", edits)
		}
	}
}

func TestSourceAndBuild(t *testing.T) {
	dir := plugintest.Source(t, `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("echo", "0.1.0").Handle("echo", func(_ context.Context, p map[string]any) (map[string]any, error) { return p, nil })

func main() {}
`)
	so := plugintest.Build(t, dir)
	if filepath.Ext(so) != ".so" {
		t.Errorf("Build returned %s", so)
	}
	bi, err := buildinfo.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	if bi.GoVersion != runtime.Version() {
		t.Errorf("built with %s, want %s", bi.GoVersion, runtime.Version())
	}
}
