package build_test

import (
	"debug/buildinfo"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// rulesModule copies testdata/reloc/rules (a module with a subpackage, an
// internal package and a dependency) into a directory of its own, with a
// go.mod that takes the sdk from this repository and example.com/dep from
// testdata/reloc/<dep>, sets its version and applies edits: triples of file,
// old and new text.
func rulesModule(t testing.TB, dep, version string, edits ...string) string {
	t.Helper()
	testdata, err := filepath.Abs(filepath.Join("testdata", "reloc"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "rules")
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(testdata, "rules"))); err != nil {
		t.Fatal(err)
	}
	goMod := "module example.com/rules\n\ngo 1.22\n\n" +
		"require (\n\tgithub.com/hotmod/hotmod/sdk v0.0.0\n\texample.com/dep v1.0.0\n)\n\n" +
		"replace github.com/hotmod/hotmod/sdk => " + filepath.Join(plugintest.Repo(t), "sdk") + "\n" +
		"replace example.com/dep => " + filepath.Join(testdata, dep) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(goMod), 0o644); err != nil {
		t.Fatal(err)
	}
	edits = append([]string{"main.go", `const version = "1.0.0"`, `const version = "` + version + `"`}, edits...)
	for i := 0; i+2 < len(edits); i += 3 {
		editFile(t, filepath.Join(dir, edits[i]), edits[i+1], edits[i+2])
	}
	return dir
}

func editFile(t testing.TB, file, old, repl string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s does not contain %q", file, old)
	}
	if err := os.WriteFile(file, []byte(strings.ReplaceAll(string(data), old, repl)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addField adds a field to the subpackage's result struct.
var addField = []string{filepath.Join("logic", "logic.go"), "\tDep string\n}", "\tDep  string\n\tNote string\n}"}

// relocatedModules returns the relocated modules an artifact links, keyed by
// their original path.
func relocatedModules(t *testing.T, so string) map[string]string {
	t.Helper()
	bi, err := buildinfo.ReadFile(so)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range bi.Deps {
		if rest, ok := strings.CutPrefix(d.Path, "hotmod.reloc/"); ok {
			_, orig, _ := strings.Cut(rest, "/")
			out[orig] = d.Path
		}
		if d.Path == "example.com/dep" || d.Path == "example.com/rules" {
			t.Errorf("%s links %s under its original path", so, d.Path)
		}
	}
	return out
}

// buildReloc builds dir into out (a new directory when ""), with cache for
// relocated copies ("" for the default) or without relocation.
func buildReloc(t testing.TB, dir, out, cache string, noRelocate bool, env ...string) string {
	t.Helper()
	if out == "" {
		out = t.TempDir()
	}
	so, err := build.Native(t.Context(), build.Options{Dir: dir, Out: out, Env: append([]string{"GOWORK=off"}, env...),
		RelocateCache: cache, NoRelocate: noRelocate})
	if err != nil {
		t.Fatal(err)
	}
	return so
}

// TestRelocatedVersionsLoadSideBySide: versions of a module built from
// different directories, one with a changed subpackage, one with another
// version of a dependency, all load into this process and answer their own
// answers.
func TestRelocatedVersionsLoadSideBySide(t *testing.T) {
	cache, out := t.TempDir(), t.TempDir()
	type version struct {
		dir        string
		n          int64
		dep        string
		fields     int64
		so         string
		relocated  map[string]string
		versionStr string
	}
	vs := []*version{
		{dir: rulesModule(t, "dep-v1", "1.0.0"), dep: "dep v1", fields: 2, versionStr: "1.0.0"},
		{dir: rulesModule(t, "dep-v1", "1.0.1"), dep: "dep v1", fields: 2, versionStr: "1.0.1"},              // the same code, another directory
		{dir: rulesModule(t, "dep-v1", "1.1.0", addField...), dep: "dep v1", fields: 3, versionStr: "1.1.0"}, // a field added in the subpackage
		{dir: rulesModule(t, "dep-v2", "1.2.0"), dep: "dep v2", fields: 2, versionStr: "1.2.0"},              // another version of the dependency
		{dir: rulesModule(t, "dep-v2", "1.3.0", addField...), dep: "dep v2", fields: 3, versionStr: "1.3.0"}, // both
	}
	t.Run("build", func(t *testing.T) {
		for _, v := range vs {
			t.Run(v.versionStr, func(t *testing.T) {
				t.Parallel()
				v.so = buildReloc(t, v.dir, filepath.Join(out, v.versionStr), cache, false)
				v.relocated = relocatedModules(t, v.so)
				if len(v.relocated) != 2 {
					t.Errorf("relocated modules %v, want example.com/rules and example.com/dep", v.relocated)
				}
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	// Content-addressed: the same code gives the same paths, a change gives
	// new ones to the module that changed and to every module above it.
	same := func(a, b *version, mod string) bool { return a.relocated[mod] == b.relocated[mod] }
	for _, c := range []struct {
		a, b      int
		mod       string
		wantEqual bool
	}{
		{0, 1, "example.com/rules", true}, {0, 1, "example.com/dep", true},
		{0, 2, "example.com/rules", false}, {0, 2, "example.com/dep", true},
		{0, 3, "example.com/rules", false}, {0, 3, "example.com/dep", false},
		{3, 4, "example.com/dep", true},
	} {
		if got := same(vs[c.a], vs[c.b], c.mod); got != c.wantEqual {
			t.Errorf("%s: %s in %s and %s in %s: equal = %v, want %v", c.mod,
				vs[c.a].relocated[c.mod], vs[c.a].versionStr, vs[c.b].relocated[c.mod], vs[c.b].versionStr, got, c.wantEqual)
		}
	}

	l := native.NewLoader(t.TempDir(), nil)
	ctx := t.Context()
	var insts []*native.Instance
	for _, v := range vs {
		inst, err := l.Load(ctx, v.so)
		if err != nil {
			t.Fatalf("%s: %v", v.versionStr, err)
		}
		insts = append(insts, inst)
	}
	// Every version answers its own answer, after all were loaded.
	for i, v := range vs {
		out, err := insts[i].Invoke(ctx, "eval", map[string]any{"x": int64(21)})
		if err != nil || out["n"] != int64(42) || out["dep"] != v.dep || out["fields"] != v.fields ||
			insts[i].Manifest().Version != v.versionStr {
			t.Errorf("%s: eval = %v, %v; want n 42, dep %q, %d fields", insts[i].Manifest().Version, out, err, v.dep, v.fields)
		}
	}
}

// TestUnrelocatedMismatchMessage: without relocation, a changed subpackage
// is refused, and the refusal names the package and where each copy came
// from.
func TestUnrelocatedMismatchMessage(t *testing.T) {
	dir := rulesModule(t, "dep-v1", "2.0.0")
	first := buildReloc(t, dir, "", "", true)
	editFile(t, filepath.Join(dir, "main.go"), `"2.0.0"`, `"2.1.0"`)
	editFile(t, filepath.Join(dir, addField[0]), addField[1], addField[2])
	second := buildReloc(t, dir, "", "", true)

	l := native.NewLoader(t.TempDir(), nil)
	if _, err := l.Load(t.Context(), first); err != nil {
		t.Fatal(err)
	}
	_, err := l.Load(t.Context(), second)
	if !errors.Is(err, sdk.ErrIncompatible) {
		t.Fatalf("second unrelocated version: %v, want a refusal", err)
	}
	t.Logf("refused: %v", err)
	for _, want := range []string{
		"different version of package example.com/rules/logic",
		"two different copies of package example.com/rules/logic: the artifact has it from module example.com/rules",
		"the already loaded " + first + " from module example.com/rules",
		"built without relocation", "hotmod build --transport native",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal lacks %q", want)
		}
	}
	if strings.Contains(err.Error(), "against this host's sdk") {
		t.Error("refusal sends the author to the sdk")
	}
}

// TestRelocatedCompileError: a compile error in a relocated package points
// at the author's file, not at the copy.
func TestRelocatedCompileError(t *testing.T) {
	dir := rulesModule(t, "dep-v1", "1.0.0", addField[0], "r := Result{", "r := undefinedThing + Result{")
	_, err := build.Native(t.Context(), build.Options{Dir: dir, Out: t.TempDir(), Env: []string{"GOWORK=off"}, RelocateCache: t.TempDir()})
	if err == nil {
		t.Fatal("a broken subpackage built")
	}
	for _, want := range []string{"a relocated copy of " + dir, filepath.Join(dir, "logic", "logic.go") + ":18:", "undefined: undefinedThing", "# example.com/rules/logic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
