package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Versions of the adder module the harness builds. Every row of the tables
// calls base; the hot-swap test alternates base and next; the memory test
// loads extra next to what is loaded already, so that nothing it loads has
// been loaded into this process before (a native plugin never leaves it).
const (
	verBase  = "1.0.0"
	verNext  = "1.0.1"
	verExtra = "1.0.2"
)

// artifacts are the files one run builds, all under tmp.
type artifacts struct {
	hm       map[string]map[string]string // version → transport → hotmod artifact
	raw      map[string]string            // version → raw Go plugin (-buildmode=plugin by package path)
	goplugin string                       // the hashicorp/go-plugin server binary
	extism   string                       // the Extism guest (.wasm), "" when it did not build
	extErr   string                       // why the Extism guest did not build
}

// buildAll builds the hotmod CLI, then every artifact with it and with the
// go command. Version 1.0.0 is ./plugins/adder itself; the other versions
// are copies of it in tmp/_src that differ only in version.go, the way a
// module author bumps a version: the packages they share with this host
// stay byte-identical, as native plugins require.
func buildAll(tmp string) artifacts {
	log.Print("building the hotmod CLI and the artifacts …")
	hm := filepath.Join(tmp, "hotmod")
	run("..", nil, "go", "build", "-o", hm, "./cmd/hotmod")

	a := artifacts{hm: map[string]map[string]string{}, raw: map[string]string{}}
	for _, v := range []string{verBase, verNext, verExtra} {
		src := "./plugins/adder"
		if v != verBase {
			src = versionedSource(tmp, v)
		}
		a.hm[v] = map[string]string{}
		for _, t := range []string{"native", "wasm", "process"} {
			out := filepath.Join(tmp, "hm", v, t)
			run(".", nil, hm, "build", "--transport", t, "-o", out, src)
			a.hm[v][t] = only(out)
		}
	}
	// The raw Go plugin is built by package path, so each package is one
	// plugin path: ./plugins/adder for base, the tmp/_src copy for extra.
	for v, src := range map[string]string{verBase: "./plugins/adder", verExtra: versionedSource(tmp, verExtra)} {
		a.raw[v] = filepath.Join(tmp, "raw", v, "adder_raw.so")
		run(".", nil, "go", "build", "-buildmode=plugin", "-o", a.raw[v], src)
	}
	a.goplugin = filepath.Join(tmp, "goplugin")
	run(".", nil, "go", "build", "-o", a.goplugin, "./peers/goplugin")

	// The Extism guest is its own Go module (its PDK only compiles for
	// wasm); standard Go, no TinyGo.
	a.extism = filepath.Join(tmp, "extism", "adder.wasm")
	if out, err := goCmd("./peers/extism", []string{"GOOS=wasip1", "GOARCH=wasm"},
		"build", "-buildmode=c-shared", "-o", a.extism, ".").CombinedOutput(); err != nil {
		a.extism, a.extErr = "", fmt.Sprintf("`GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared` failed: %v: %s", err, strings.TrimSpace(string(out)))
		log.Printf("extism guest: %s", a.extErr)
	}
	return a
}

// versionedSource writes (once) a copy of ./plugins/adder whose version.go
// says v, and returns its directory. A directory named with a leading
// underscore is skipped by ./... patterns, so go vet and go test leave the
// copies alone.
func versionedSource(tmp, v string) string {
	dir := filepath.Join(tmp, "_src", "adder-"+v)
	if _, err := os.Stat(dir); err == nil {
		return dir
	}
	check(os.MkdirAll(dir, 0o755))
	main, err := os.ReadFile("plugins/adder/main.go")
	check(err)
	check(os.WriteFile(filepath.Join(dir, "main.go"), main, 0o644))
	check(os.WriteFile(filepath.Join(dir, "version.go"),
		fmt.Appendf(nil, "package main\n\nconst version = %q\n", v), 0o644))
	return dir
}

// only returns the one file in dir.
func only(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"))
	if len(m) != 1 {
		log.Fatalf("want one artifact in %s, got %v", dir, m)
	}
	return m[0]
}

func goCmd(dir string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	return cmd
}

func run(dir string, env []string, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}
