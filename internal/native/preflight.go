package native

import (
	"bytes"
	"debug/buildinfo"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sort"
	"strings"
)

// Report is what an artifact's Go build info says, and what in it keeps this
// host from loading it natively.
type Report struct {
	// Path is the main package's path as recorded: "command-line-arguments"
	// for a file-list build (what `hotmod build` makes).
	Path      string
	GoVersion string
	// Settings are the build settings (-buildmode, -race, CGO_ENABLED, GOARCH, …).
	Settings map[string]string
	// Deps are the modules the artifact links, sorted by path.
	Deps []Dep
	// Problems says, one self-contained sentence each, what differs from this
	// host and what to do about it. Empty when nothing stands in the way as far
	// as build info can tell; the probe has the last word.
	Problems []string
}

// Dep is one module an artifact links.
type Dep struct {
	Path    string
	Version string
	// Replace is the replacement, if any: a directory ("../sdk") or
	// "path@version".
	Replace string
}

// Preflight reads the Go build info of the artifact at path and compares it
// with this host's, without loading or running anything in the file. The
// error is for a file that cannot be read or is not a Go binary; the
// incompatibilities are in the report's Problems.
func Preflight(path string) (*Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return preflight(f, path, hostBuildInfo())
}

// hostBuildInfo returns the running binary's build info, nil when it has none.
func hostBuildInfo() *debug.BuildInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi
}

func preflight(r io.ReaderAt, name string, host *debug.BuildInfo) (*Report, error) {
	bi, err := buildinfo.Read(r)
	if err != nil {
		var magic [4]byte
		if n, _ := r.ReadAt(magic[:], 0); n == 4 && bytes.Equal(magic[:], []byte("\x7fELF")) {
			return nil, fmt.Errorf("not a Go plugin: %s is an ELF file without readable Go build info "+
				"(truncated, damaged, or not built by Go: %v) — rebuild it with `hotmod build`", name, err)
		}
		return nil, fmt.Errorf("not a Go plugin: %s: %v — native modules are .so files built with `hotmod build`", name, err)
	}
	rep := &Report{
		Path:      bi.Path,
		GoVersion: bi.GoVersion,
		Settings:  settingsOf(bi),
		Problems:  compareBuildInfo(host, bi),
	}
	for _, m := range modulesOf(bi) {
		d := Dep{Path: m.Path, Version: m.Version}
		if m.Replace != nil {
			d.Replace = m.Replace.Path
			if m.Replace.Version != "" {
				d.Replace += "@" + m.Replace.Version
			}
		}
		rep.Deps = append(rep.Deps, d)
	}
	sort.Slice(rep.Deps, func(i, j int) bool { return rep.Deps[i].Path < rep.Deps[j].Path })
	return rep, nil
}

func settingsOf(bi *debug.BuildInfo) map[string]string {
	m := make(map[string]string, len(bi.Settings))
	for _, s := range bi.Settings {
		m[s.Key] = s.Value
	}
	return m
}

// modulesOf returns the main module (when recorded) and the dependencies.
func modulesOf(bi *debug.BuildInfo) []*debug.Module {
	var ms []*debug.Module
	if bi.Main.Path != "" {
		ms = append(ms, &bi.Main)
	}
	for _, d := range bi.Deps {
		if d != nil {
			ms = append(ms, d)
		}
	}
	return ms
}

// boolSettings are recorded only when true.
var boolSettings = map[string]bool{"-race": true, "-msan": true, "-asan": true, "-trimpath": true}

// flagSettings must be identical in host and plugin: each changes the code of
// packages the two share (the runtime and the standard library at least).
//
// Deliberately not compared:
//   - DefaultGODEBUG: it follows the main module's go line and only sets
//     run-time defaults, which the host's own setting governs anyway.
//   - -tags: tags select files. A tag that changes a package shared with the
//     host changes that package's hash, and the probe then refuses the
//     artifact with "plugin was built with a different version of package …";
//     a tag that only selects files of the module's own main package is
//     harmless. Requiring equal tags would refuse good artifacts. (`hotmod
//     build` still passes the host's tags.)
//   - -ldflags: they apply to linking the plugin, not to shared packages;
//     only -pluginpath is refused (it breaks symbol lookup).
//   - -cover, -pgo: coverage or profile-guided optimisation of the module's own
//     code is harmless; applied to shared packages, the probe sees it.
//   - CGO_CFLAGS and friends: they are omitted from -trimpath builds and do not
//     change Go package hashes.
//   - -buildmode of the host: exe and pie hosts both load plugins.
var flagSettings = []string{"-compiler", "-race", "-msan", "-asan", "-trimpath", "-gcflags", "-asmflags"}

const rebuildHint = "(hotmod build does), or build it for the wasm or process transport"

// compareBuildInfo returns what keeps a host built as host from loading a
// plugin built as cand. host may be nil (a binary without build info).
//
// A test binary is a fine host: its build info has the Go version and the
// settings (go test -race records -race=true) but no dependency list, so
// module versions are then left to the probe, exactly as when either side
// replaces a module with a local directory, whose version is "(devel)".
func compareBuildInfo(host, cand *debug.BuildInfo) []string {
	if host == nil {
		return []string{"this host binary carries no Go build info, so no native module can be checked against it " +
			"and all are refused: build the host with the go command in module mode, or use the wasm or process transport"}
	}
	var problems []string
	if cand.GoVersion != host.GoVersion {
		problems = append(problems, fmt.Sprintf("built with %s, this host runs %s: native modules need the host's exact toolchain — rebuild with %s %s",
			cand.GoVersion, host.GoVersion, host.GoVersion, rebuildHint))
	}
	cs, hs := settingsOf(cand), settingsOf(host)
	switch mode := cs["-buildmode"]; mode {
	case "plugin":
	case "exe", "pie":
		problems = append(problems, fmt.Sprintf("it is a program (-buildmode=%s), not a plugin: load it with the process transport, "+
			"or build it with `hotmod build --transport native`", mode))
	default:
		problems = append(problems, fmt.Sprintf("it was built with -buildmode=%q, not -buildmode=plugin: build it with `hotmod build --transport native`", mode))
	}
	if hs["CGO_ENABLED"] != "1" {
		problems = append(problems, "this host was built with CGO_ENABLED=0 and cannot load native modules: "+
			"rebuild the host with CGO_ENABLED=1, or use the wasm or process transport")
	} else if cs["CGO_ENABLED"] != "1" {
		problems = append(problems, fmt.Sprintf("built with CGO_ENABLED=%s, this host with CGO_ENABLED=1: native modules need cgo — rebuild with CGO_ENABLED=1 %s",
			cs["CGO_ENABLED"], rebuildHint))
	}
	keys := append([]string(nil), flagSettings...)
	keys = append(keys, goEnvKeys(cs, hs)...)
	for _, k := range keys {
		c, h := normSetting(k, cs[k]), normSetting(k, hs[k])
		if c != h {
			problems = append(problems, fmt.Sprintf("built %s, this host %s: native modules need the host's exact build settings — rebuild %s %s",
				describeSetting(k, c), describeSetting(k, h), describeSetting(k, h), rebuildHint))
		}
	}
	if strings.Contains(cs["-ldflags"], "-pluginpath") {
		problems = append(problems, "built with -ldflags="+cs["-ldflags"]+": a custom -pluginpath breaks the lookup of Module — "+
			"rebuild with `hotmod build`, which gives every build its own plugin path")
	}
	problems = append(problems, compareModules(host, cand)...)
	return problems
}

// goEnvKeys returns the GO* environment settings recorded on either side
// (GOOS, GOARCH, GOAMD64/GOARM64/…, GOEXPERIMENT, GOFIPS140), sorted.
func goEnvKeys(maps ...map[string]string) []string {
	seen := map[string]bool{}
	var keys []string
	for _, m := range maps {
		for k := range m {
			if isGoEnv(k) && !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	return keys
}

func isGoEnv(k string) bool {
	if len(k) < 3 || !strings.HasPrefix(k, "GO") {
		return false
	}
	for _, r := range k[2:] {
		if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

func normSetting(k, v string) string {
	if boolSettings[k] && v == "" {
		return "false"
	}
	return v
}

// describeSetting says how a side was built in words that fit after
// "built " and "rebuild ": "with -race", "without -trimpath", "with GOAMD64=v3".
func describeSetting(k, v string) string {
	switch {
	case boolSettings[k] && v == "true":
		return "with " + k
	case boolSettings[k] && v == "false":
		return "without " + k
	case v == "":
		return "without " + k
	}
	return "with " + k + "=" + v
}

// compareModules reports modules linked by both sides at different versions
// (or, at the same version, with different checksums). A module replaced by a
// local directory (version "(devel)") on either side cannot be compared from
// build info; the probe compares its packages.
func compareModules(host, cand *debug.BuildInfo) []string {
	hm := map[string]*debug.Module{}
	for _, m := range modulesOf(host) {
		hm[m.Path] = m
	}
	var problems []string
	for _, c := range modulesOf(cand) {
		h := hm[c.Path]
		if h == nil {
			continue
		}
		cv, csum, cok := moduleVersion(c)
		hv, hsum, hok := moduleVersion(h)
		switch {
		case !cok || !hok:
		case cv != hv:
			problems = append(problems, fmt.Sprintf("module %s is %s in the artifact but %s in this host: modules shared with the host must be at the same version — "+
				"require %s %s in the module's go.mod and rebuild", c.Path, cv, hv, c.Path, hv))
		case csum != "" && hsum != "" && csum != hsum:
			problems = append(problems, fmt.Sprintf("module %s %s has checksum %s in the artifact but %s in this host: the two were built from different code — "+
				"clear the module cache entry or check GOPROXY/GONOSUMDB, and rebuild", c.Path, cv, csum, hsum))
		}
	}
	return problems
}

// moduleVersion names the code a module entry stands for ("v1.2.0",
// "v1.2.0 => example.com/fork v1.0.0") and its checksum; ok is false when
// build info cannot tell (local directory, development version).
func moduleVersion(m *debug.Module) (v, sum string, ok bool) {
	if r := m.Replace; r != nil {
		if r.Version == "" || r.Version == "(devel)" {
			return "", "", false
		}
		return m.Version + " => " + r.Path + " " + r.Version, r.Sum, true
	}
	if m.Version == "" || m.Version == "(devel)" {
		return "", "", false
	}
	return m.Version, m.Sum, true
}
