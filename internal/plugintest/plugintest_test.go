package plugintest_test

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
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

// TestExampleWithPackagesAndDeps copies an example that has packages of its
// own and a third-party dependency: the copy is a module of its own that the
// go command resolves, and Require and Edit change it.
func TestExampleWithPackagesAndDeps(t *testing.T) {
	dir := plugintest.Example(t, "rules")
	main, err := os.ReadFile(filepath.Join(dir, "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(main), `"hotmodtest.example/rules/logic"`) || strings.Contains(string(main), "hotmod/examples/rules") {
		t.Errorf("the example's own imports were not rewritten:\n%s", main)
	}
	list := func() string {
		cmd := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{.Path}} {{.Version}}{{end}}", ".")
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go list in the copy: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := list(); !strings.Contains(out, "hotmodtest.example/rules \n") || !strings.Contains(out, "github.com/expr-lang/expr v1.17.") {
		t.Errorf("the copy's packages and modules:\n%s", out)
	}
	plugintest.Require(t, dir, "github.com/expr-lang/expr", "v1.17.7")
	if out := list(); !strings.Contains(out, "github.com/expr-lang/expr v1.17.7\n") {
		t.Errorf("after Require v1.17.7:\n%s", out)
	}
	plugintest.Edit(t, dir, "format/format.go", "package format", "package format // edited")
	if data, _ := os.ReadFile(filepath.Join(dir, "format", "format.go")); !strings.Contains(string(data), "// edited") {
		t.Errorf("Edit did not edit format/format.go")
	}
	tb := &fatalTB{TB: t}
	if plugintest.Edit(tb, dir, "format/format.go", "no such text", "x"); tb.msg == "" {
		t.Errorf("Edit of missing text did not fail the test")
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
