// Package build builds module artifacts that the running host can load.
//
// A native artifact is a Go plugin (-buildmode=plugin), and a plugin only
// loads into a host built by the same toolchain with the same flags, from
// identical sources for every package the two share. Native therefore builds
// with the toolchain and flags recorded in the running binary's own build
// info (see HostToolchain), so that what `hotmod build` makes, `hotmod serve`
// loads.
//
// Native compiles a FILE LIST (the package's non-test .go files) rather than
// a package path. The go command then names the plugin
// `plugin/unnamed-<hash of build ID and sources>`, so every distinct build has
// a plugin path of its own and a new version loads next to the old one in the
// same process. A package-path build reuses one plugin path for every version
// (the runtime answers "plugin already loaded"), and `-ldflags=-pluginpath=`
// breaks symbol lookup ("could not find symbol Module").
//
// Native relocates (package relocate, unless Options.NoRelocate): every
// package the module does not share with the host — all but the standard
// library and the hotmod sdk — is built under an import path unique to its
// content, from a private copy, so that versions whose subpackages or
// dependencies differ load side by side in one process.
package build

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strings"

	"github.com/hotmod/hotmod/internal/relocate"
)

// Options says what to build and where.
type Options struct {
	// Dir is the module's main package directory.
	Dir string
	// Out is the output directory; "" means the current directory. It is
	// created if missing.
	Out string
	// Name is the output's base name without extension; "" means the base
	// name of Dir.
	Name string
	// Env is extra environment for the go command, e.g. "GOTOOLCHAIN=go1.25.5"
	// or "GOFLAGS=-race". It is appended after os.Environ() and after the
	// settings Native derives from the host, so it wins over both.
	Env []string
	// Stderr, when set, receives the go command's output as it runs.
	Stderr io.Writer
	// Place, when set, is called with the built artifact's path (in a
	// temporary directory inside Out) and returns the path to publish it at
	// instead of <Out>/<Name><ext>; it must be on Out's file system.
	// `hotmod build` names the artifact after the module's manifest here.
	Place func(built string) (string, error)
	// BeforePublish, when set, is called with the built artifact's path
	// (in a temporary directory) and the path it is about to be renamed to,
	// just before the rename; an error stops the build and nothing is
	// published. `hotmod build --sign` writes the signature beside dest
	// here, so that it is in place when the artifact arrives.
	BeforePublish func(built, dest string) error
	// NoRelocate turns relocation off for a native build: the plugin is built
	// from the module's own directory, and only its main package may differ
	// from a version already loaded in the same process. Relocation is on by
	// default (see package relocate).
	NoRelocate bool
	// RelocateCache is the directory that keeps relocated copies of modules
	// between native builds; "" means <user cache dir>/hotmod/relocate.
	RelocateCache string
}

// nonGoSources are the extensions of source files a package may hold that a
// file-list build cannot take (the go command accepts only .go files there).
var nonGoSources = map[string]bool{
	".c": true, ".cc": true, ".cpp": true, ".cxx": true, ".m": true,
	".s": true, ".S": true, ".sx": true, ".f": true, ".F": true,
	".for": true, ".f90": true, ".syso": true, ".swig": true, ".swigcxx": true,
}

// Native builds the package in o.Dir as a native plugin and returns the
// artifact's absolute path, `<Out>/<Name>.so`. The artifact is written under
// a temporary name in Out and renamed into place, so a directory watcher never
// sees a half-written file.
func Native(ctx context.Context, o Options) (path string, err error) {
	t, err := prepare(o)
	if err != nil {
		return "", err
	}
	files, err := sourceFiles(t.dir)
	if err != nil {
		return "", err
	}
	_, flags := HostToolchain()
	args := append([]string{"build", "-buildmode=plugin"}, flags...)
	if !slices.ContainsFunc(flags, func(f string) bool { return strings.HasPrefix(f, "-pgo=") }) {
		// A host built without a profile: a default.pgo next to the module's
		// sources must not change how the shared packages are compiled.
		args = append(args, "-pgo=off")
	}
	env := buildEnv(os.Environ(), o.Env)
	if o.NoRelocate {
		return t.goBuild(ctx, o, ".so", env, args, files, nil)
	}
	res, err := relocate.Prepare(ctx, relocate.Options{
		Dir: t.dir, Files: files, Env: env, Flags: flags, Cache: relocateCache(o.RelocateCache),
		Trimpath: slices.Contains(flags, "-trimpath"),
	})
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	if res.Dir != t.dir {
		t.dir, t.copyOf = res.Dir, t.dir
	}
	// The copy is a module of its own, outside any workspace.
	return t.goBuild(ctx, o, ".so", append(env, "GOWORK=off"), args, res.Files, res.Explain)
}

// relocateCache returns the directory for relocated copies, "" when there
// is none (relocate.Prepare says so if it needs one).
func relocateCache(dir string) string {
	if dir != "" {
		return dir
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(cache, "hotmod", "relocate")
}

// target is where one build's artifact goes.
type target struct {
	dir  string // the package's directory, absolute
	out  string // the output directory, absolute, created
	name string // the artifact's base name, without extension
	// copyOf is the module's own directory when dir is a relocated copy
	// of it.
	copyOf string
}

// prepare checks o and creates the output directory.
func prepare(o Options) (target, error) {
	if o.Dir == "" {
		return target{}, errors.New("build: no package directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return target{}, fmt.Errorf("build: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return target{}, fmt.Errorf("build: %s is not a package directory", o.Dir)
	}
	out := o.Out
	if out == "" {
		out = "."
	}
	if out, err = filepath.Abs(out); err != nil {
		return target{}, fmt.Errorf("build: %w", err)
	}
	name := o.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
		return target{}, fmt.Errorf("build: %q is not a usable artifact name", name)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return target{}, fmt.Errorf("build: %w", err)
	}
	return target{dir: dir, out: out, name: name}, nil
}

// goBuild runs `go <args> -o <tmp> <pkg>` in the package's directory with
// env, into a temporary directory inside the output directory, and renames
// the result to <out>/<name><ext>: a directory watcher never sees a
// half-written file. explain, if not nil, may add advice to the go
// command's output when it fails.
func (t target) goBuild(ctx context.Context, o Options, ext string, env, args, pkg []string, explain func(string) string) (string, error) {
	tmp, err := os.MkdirTemp(t.out, ".hotmod-build-")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)
	file := t.name + ext
	args = append(append(args, "-o", filepath.Join(tmp, file)), pkg...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = t.dir
	cmd.Env = env
	var output bytes.Buffer
	var w io.Writer = &output
	if o.Stderr != nil {
		w = io.MultiWriter(&output, o.Stderr)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		msg := strings.TrimSpace(output.String())
		if explain != nil {
			msg = explain(msg)
		}
		where := t.dir
		if t.copyOf != "" {
			where = fmt.Sprintf("a relocated copy of %s (%s)", t.copyOf, t.dir)
		}
		return "", fmt.Errorf("build: `go %s` in %s failed: %w\n%s", strings.Join(args, " "), where, err, msg)
	}
	built, path := filepath.Join(tmp, file), filepath.Join(t.out, file)
	if o.Place != nil {
		if path, err = o.Place(built); err != nil {
			return "", fmt.Errorf("build: %w", err)
		}
	}
	if o.BeforePublish != nil {
		if err := o.BeforePublish(built, path); err != nil {
			return "", fmt.Errorf("build: %w", err)
		}
	}
	if err := os.Rename(built, path); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return path, nil
}

// sourceFiles lists the package's non-test .go files (relative names, sorted)
// the way the go command would see them; build constraints inside the files
// are still applied by the go command.
func sourceFiles(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	var files, foreign []string
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || strings.HasPrefix(n, ".") || strings.HasPrefix(n, "_") {
			continue
		}
		switch ext := filepath.Ext(n); {
		case ext == ".go" && !strings.HasSuffix(n, "_test.go"):
			files = append(files, n)
		case nonGoSources[ext]:
			foreign = append(foreign, n)
		}
	}
	if len(foreign) > 0 {
		return nil, fmt.Errorf("build: %s holds non-Go sources (%s): a native module is built from a list of .go files, "+
			"which cannot include them — move that code into a package the main package imports", dir, strings.Join(foreign, ", "))
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("build: no Go source files in %s", dir)
	}
	sort.Strings(files)
	return files, nil
}

// buildEnv returns the go command's environment: the process environment,
// then what the host's build info requires, then the caller's extra.
func buildEnv(environ, extra []string) []string {
	goVersion, _ := HostToolchain()
	env := append([]string(nil), environ...)
	// GOTOOLCHAIN: an explicit choice (the process environment or Options.Env)
	// wins; otherwise ask for the host's exact release.
	if lookupEnv(environ, "GOTOOLCHAIN") == "" && lookupEnv(extra, "GOTOOLCHAIN") == "" {
		if v := releaseVersion(goVersion); v != "" {
			env = append(env, "GOTOOLCHAIN="+v)
		}
	}
	env = append(env, "CGO_ENABLED=1")
	env = append(env, hostGoEnv()...)
	return append(env, extra...)
}

// lookupEnv returns the last value of key in env ("" when absent), the value
// os/exec would use.
func lookupEnv(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

var releaseRE = regexp.MustCompile(`^go1\.\d+(\.\d+)?((rc|beta)\d+)?$`)

// releaseVersion returns the release name in a Go version string, "" for a
// development toolchain (which GOTOOLCHAIN cannot name).
func releaseVersion(v string) string {
	v, _, _ = strings.Cut(v, " ") // "go1.26.8 X:boringcrypto"
	if releaseRE.MatchString(v) {
		return v
	}
	return ""
}

// hostInfo is the running binary's build info; nil when it has none.
func hostInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

func settings(bi *debug.BuildInfo) map[string]string {
	m := map[string]string{}
	if bi != nil {
		for _, s := range bi.Settings {
			m[s.Key] = s.Value
		}
	}
	return m
}

// HostToolchain returns the Go version that built the running binary and the
// `go build` flags a native plugin needs to match it: -race, -msan, -asan,
// -trimpath, -gcflags, -asmflags, -tags and -pgo (when the profile is still
// there) as the binary's build info records them. Native adds -pgo=off when
// the host used no profile. The plugin must also be built with CGO_ENABLED=1 and the
// host's GOOS, GOARCH, GOAMD64 (or the GOARCH's other level variable),
// GOEXPERIMENT and GOFIPS140; Native sets those in the environment.
//
// In a test binary the answer describes the test binary: `go test -race`
// gives -race.
func HostToolchain() (goVersion string, flags []string) {
	bi := hostInfo()
	if bi == nil {
		return runtime.Version(), nil
	}
	s := settings(bi)
	for _, k := range []string{"-race", "-msan", "-asan", "-trimpath"} {
		if s[k] == "true" {
			flags = append(flags, k)
		}
	}
	for _, k := range []string{"-gcflags", "-asmflags", "-tags"} {
		if v := s[k]; v != "" {
			flags = append(flags, k+"="+v)
		}
	}
	// PGO changes how shared packages (the standard library included) are
	// compiled: use the host's profile when it is still there.
	if p := s["-pgo"]; p != "" {
		if _, err := os.Stat(p); err == nil {
			flags = append(flags, "-pgo="+p)
		}
	}
	return bi.GoVersion, flags
}

// hostGoEnv returns the GO* settings of the host's build info as environment
// assignments, with GOEXPERIMENT and GOFIPS140 cleared when the host used
// the defaults, so that a stray value in the environment cannot make an
// artifact the host refuses.
func hostGoEnv() []string {
	s := settings(hostInfo())
	if len(s) == 0 {
		return nil
	}
	for _, k := range []string{"GOEXPERIMENT", "GOFIPS140"} {
		if _, ok := s[k]; !ok {
			s[k] = ""
		}
	}
	var env []string
	for k, v := range s {
		if isGoEnvSetting(k) {
			env = append(env, k+"="+v)
		}
	}
	sort.Strings(env)
	return env
}

var goEnvRE = regexp.MustCompile(`^GO[A-Z0-9]+$`)

// isGoEnvSetting reports whether a build-info key is a GO* environment
// variable (GOOS, GOARCH, GOAMD64, GOARM, GOEXPERIMENT, GOFIPS140, …).
func isGoEnvSetting(k string) bool { return goEnvRE.MatchString(k) }
