package relocate

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// writeModule writes files (path → content) under a new directory holding a
// go.mod of module example.com/m, and returns the directory.
func writeModule(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.22\n"
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func goEnv() []string {
	return append(os.Environ(), "CGO_ENABLED=1", "GOWORK=off", "GOFLAGS=")
}

func prepare(t *testing.T, dir, cache string) (*Result, error) {
	t.Helper()
	return Prepare(t.Context(), Options{Dir: dir, Files: []string{"main.go"}, Env: goEnv(), Cache: cache})
}

const mainImportsSub = "package main\n\nimport _ \"example.com/m/sub\"\n\nfunc main() {}\n"

func TestRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files map[string]string
		want  []string
		skip  bool
	}{
		{"cgo", map[string]string{"main.go": mainImportsSub,
			"sub/c.go": "package sub\n\n// int counter;\nimport \"C\"\n"},
			[]string{"package example.com/m/sub (c.go) cannot be relocated: it uses cgo", "wasm or process transport"}, false},
		{"expvar", map[string]string{"main.go": mainImportsSub,
			"sub/s.go": "package sub\n\nimport \"expvar\"\n\nvar Hits = expvar.NewInt(\"hits\")\n"},
			[]string{"package example.com/m/sub cannot be relocated: it imports expvar", "publish the same names and panic"}, false},
		{"expvar in main", map[string]string{"main.go": "package main\n\nimport _ \"expvar\"\nimport _ \"example.com/m/sub\"\n\nfunc main() {}\n",
			"sub/s.go": "package sub\n"},
			[]string{"package main (", "it imports expvar"}, false},
		{"flag at package level", map[string]string{"main.go": mainImportsSub,
			"sub/s.go": "package sub\n\nimport \"flag\"\n\nvar Verbose = flag.Bool(\"v\", false, \"talk\")\n"},
			[]string{"package example.com/m/sub", "s.go:5:15", "it calls flag.Bool while it initialises", `"flag redefined"`, "flag.FlagSet"}, false},
		{"renamed flag in init", map[string]string{"main.go": mainImportsSub,
			"sub/s.go": "package sub\n\nimport fl \"flag\"\n\nfunc init() { fl.String(\"name\", \"\", \"\") }\n"},
			[]string{"it calls fl.String while it initialises"}, false},
		{"flag in main's init", map[string]string{"main.go": "package main\n\nimport (\n\t\"flag\"\n\t_ \"example.com/m/sub\"\n)\n\nfunc init() { flag.Int(\"n\", 0, \"\") }\n\nfunc main() {}\n",
			"sub/s.go": "package sub\n"},
			[]string{"main.go:8:15", "it calls flag.Int while it initialises"}, false},
		{"http handler", map[string]string{"main.go": mainImportsSub,
			"sub/s.go": "package sub\n\nimport \"net/http\"\n\nfunc init() { http.HandleFunc(\"/x\", nil) }\n"},
			[]string{"it calls http.HandleFunc while it initialises", "multiple registrations"}, false},
		{"assembly naming a relocated package", map[string]string{"main.go": mainImportsSub,
			"sub/s.go":         "package sub\n\nimport _ \"example.com/m/other\"\n\nfunc F()\n",
			"sub/f_amd64.s":    "#include \"textflag.h\"\n\nTEXT ·F(SB),NOSPLIT,$0\n\tJMP example.com∕m∕other·G(SB)\n",
			"other/g.go":       "package other\n\nfunc G() {}\n",
			"sub/f_generic.go": "//go:build !amd64\n\npackage sub\n\nfunc F() {}\n"},
			[]string{"f_amd64.s", "its assembly names a symbol of package example.com/m/other"}, runtime.GOARCH != "amd64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.skip {
				t.Skip("needs amd64")
			}
			_, err := prepare(t, writeModule(t, tt.files), t.TempDir())
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("Prepare: %v, want a *Refusal", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("refusal %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestPrepareCarries: what relocation carries (a flag set of the module's
// own, //go:embed, //go:linkname to a relocated package, internal/, build
// tags) is carried, and the copy builds and runs.
func TestPrepareCarries(t *testing.T) {
	t.Parallel()
	dir := writeModule(t, map[string]string{
		"main.go": `package main

import (
	"fmt"

	"example.com/m/sub"
)

func main() { fmt.Println(sub.Hello()) }
`,
		"sub/sub.go": `package sub

import (
	_ "embed"
	"flag"
	_ "unsafe"

	"example.com/m/internal/secret"
)

var fs = flag.NewFlagSet("mine", flag.ContinueOnError)
var loud = fs.Bool("loud", false, "shout")

//go:embed greeting.txt
var greeting string

//go:linkname word example.com/m/internal/secret.word
func word() string

func Hello() string { return greeting + " " + word() + " " + secret.Tag() }
`,
		"sub/greeting.txt":           "hello",
		"sub/skip_test.go":           "package sub\n\nthis is not even Go\n",
		"sub/other_os.go":            "//go:build never\n\npackage sub\n\nthis is not Go either\n",
		"internal/secret/secret.go":  "package secret\n\nfunc word() string { return \"world\" }\n\nfunc Tag() string { return \"!\" }\n",
		"internal/secret/testdata/x": "not copied",
	})
	cache := t.TempDir()
	res, err := prepare(t, dir, cache)
	if err != nil {
		t.Fatal(err)
	}
	newSub := res.Moved["example.com/m/sub"]
	if !strings.HasPrefix(newSub, Prefix+"/") || !strings.HasSuffix(newSub, "/example.com/m/sub") || len(res.Moved) != 2 {
		t.Fatalf("moved %v", res.Moved)
	}
	// Only the files the build uses are copied.
	subDir := filepath.Join(cache, "m", strings.Split(newSub, "/")[1], "sub")
	entries, _ := os.ReadDir(subDir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "greeting.txt sub.go" {
		t.Errorf("copied %v, want greeting.txt and sub.go", names)
	}
	src, err := os.ReadFile(filepath.Join(subDir, "sub.go"))
	if err != nil {
		t.Fatal(err)
	}
	newSecret := res.Moved["example.com/m/internal/secret"]
	if !strings.Contains(string(src), `"`+newSecret+`"`) || !strings.Contains(string(src), "//go:linkname word "+newSecret+".word\n") {
		t.Errorf("rewritten sub.go:\n%s", src)
	}
	if orig, _ := os.ReadFile(filepath.Join(dir, "sub", "sub.go")); strings.Count(string(src), "\n") != strings.Count(string(orig), "\n") {
		t.Error("the rewrite changed the number of lines")
	}

	out, err := goRun(t, res)
	if err != nil || strings.TrimSpace(out) != "hello world !" {
		t.Fatalf("the relocated copy runs: %q, %v", out, err)
	}

	// Unchanged: the same paths, from the cache. A change below sub gives
	// both packages new paths.
	res2, err := prepare(t, dir, cache)
	if err != nil || res2.Moved[newSub] != res.Moved[newSub] {
		t.Errorf("a second Prepare moved %v, %v; want %v", res2.Moved, err, res.Moved)
	}
	if err := os.WriteFile(filepath.Join(dir, "internal", "secret", "secret.go"),
		[]byte("package secret\n\nfunc word() string { return \"there\" }\n\nfunc Tag() string { return \"?\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res3, err := prepare(t, dir, cache)
	if err != nil {
		t.Fatal(err)
	}
	if res3.Moved["example.com/m/sub"] == newSub || res3.Moved["example.com/m/internal/secret"] == newSecret {
		t.Errorf("after a change: %v, before %v", res3.Moved, res.Moved)
	}
	if out, err := goRun(t, res3); err != nil || strings.TrimSpace(out) != "hello there ?" {
		t.Errorf("after a change: %q, %v", out, err)
	}

	// A compile error points at the author's file, not at the copy.
	if err := os.WriteFile(filepath.Join(dir, "internal", "secret", "secret.go"), []byte("package secret\n\nfunc word() string { return undefinedThing }\n\nfunc Tag() string { return \"\" }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res4, err := prepare(t, dir, cache)
	if err != nil {
		t.Fatal(err)
	}
	out, err = goRun(t, res4)
	if err == nil || !strings.Contains(res4.Explain(out), filepath.Join(dir, "internal", "secret", "secret.go")+":3:") {
		t.Errorf("compile error, explained: %s", res4.Explain(out))
	}
}

// goRun runs the prepared main package (a plain program, not a plugin).
func goRun(t *testing.T, res *Result) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", append([]string{"run"}, res.Files...)...)
	cmd.Dir = res.Dir
	cmd.Env = goEnv()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestPrepareSharesEverything(t *testing.T) {
	t.Parallel()
	dir := writeModule(t, map[string]string{"main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println() }\n"})
	res, err := prepare(t, dir, t.TempDir())
	if err != nil || res.Dir != dir || len(res.Moved) != 0 {
		t.Errorf("a module of one main package: %+v, %v; want its own directory", res, err)
	}
}

func TestVersion(t *testing.T) {
	for _, c := range [][3]string{
		{"hotmod.reloc/abc/example.com/x", "", "v0.0.0"},
		{"hotmod.reloc/abc/example.com/x", "v1.17.7", "v1.17.7"},
		{"hotmod.reloc/abc/example.com/x", "v0.0.0-20240101000000-abcdefabcdef", "v0.0.0-20240101000000-abcdefabcdef"},
		{"hotmod.reloc/abc/example.com/x", "v2.1.0+incompatible", "v0.0.0"},
		{"hotmod.reloc/abc/example.com/x", "(devel)", "v0.0.0"},
		{"hotmod.reloc/abc/example.com/x/v2", "", "v2.0.0"},
		{"hotmod.reloc/abc/example.com/x/v2", "v2.3.4", "v2.3.4"},
		{"hotmod.reloc/abc/example.com/x/v12", "v1.0.0", "v12.0.0"},
		{"hotmod.reloc/abc/gopkg.in/yaml.v3", "v3.0.1", "v0.0.0"},
		{"hotmod.reloc/abc/example.com/v1", "", "v0.0.0"},
	} {
		if got := version(c[0], c[1]); got != c[2] {
			t.Errorf("version(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
	if !later("1.22.3", "1.22") || later("1.21", "1.22") || later("1.22", "1.22") || !later("1.23", "1.22.9") {
		t.Error("later")
	}
}

func TestTrim(t *testing.T) {
	cache := t.TempDir()
	now := time.Now()
	for name, age := range map[string]time.Duration{
		"m/old": MaxAge + time.Hour, "m/used": MaxAge - time.Hour, "b/old": 2 * MaxAge,
		"b/.tmp-dead": 2 * tmpMaxAge, "b/.tmp-running": tmpMaxAge / 2,
	} {
		dir := filepath.Join(cache, filepath.FromSlash(name))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(dir, now.Add(-age), now.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	trim(cache, now)
	for name, want := range map[string]bool{"m/old": false, "m/used": true, "b/old": false, "b/.tmp-dead": false, "b/.tmp-running": true} {
		if _, err := os.Stat(filepath.Join(cache, filepath.FromSlash(name))); (err == nil) != want {
			t.Errorf("%s: kept = %v, want %v", name, err == nil, want)
		}
	}
}

// TestPrepareWorkspace: a module that takes the sdk from a go.work gets the
// same sdk directory in its copy, which builds outside the workspace.
func TestPrepareWorkspace(t *testing.T) {
	t.Parallel()
	sdkDir, err := filepath.Abs(filepath.Join("..", "..", "sdk"))
	if err != nil {
		t.Fatal(err)
	}
	dir := writeModule(t, map[string]string{
		"main.go":    "package main\n\nimport (\n\t\"fmt\"\n\n\t\"example.com/m/sub\"\n)\n\nfunc main() { fmt.Println(sub.Name()) }\n",
		"sub/sub.go": "package sub\n\nimport \"github.com/hotmod/hotmod/sdk\"\n\nfunc Name() string { return sdk.New(\"m\", \"1.0.0\").Manifest().Name }\n",
		"go.work":    "go 1.22\n\nuse (\n\t.\n\t" + sdkDir + "\n)\n",
	})
	env := append(os.Environ(), "CGO_ENABLED=1", "GOWORK=", "GOFLAGS=")
	res, err := Prepare(t.Context(), Options{Dir: dir, Files: []string{"main.go"}, Env: env, Cache: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := goRun(t, res); err != nil || strings.TrimSpace(out) != "m" {
		t.Errorf("the copy of a workspace module: %q, %v", out, err)
	}
}
