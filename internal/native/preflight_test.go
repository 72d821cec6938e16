package native

import (
	"errors"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func info(goVersion string, settings ...string) *debug.BuildInfo {
	bi := &debug.BuildInfo{GoVersion: goVersion}
	for i := 0; i+1 < len(settings); i += 2 {
		bi.Settings = append(bi.Settings, debug.BuildSetting{Key: settings[i], Value: settings[i+1]})
	}
	return bi
}

// base settings of a plugin and of the hosts it matches.
var (
	pluginSettings = []string{"-buildmode", "plugin", "-compiler", "gc", "CGO_ENABLED", "1", "GOARCH", "amd64", "GOOS", "linux", "GOAMD64", "v1",
		"DefaultGODEBUG", "asynctimerchan=1,tls3des=1"}
	exeSettings = []string{"-buildmode", "exe", "-compiler", "gc", "CGO_ENABLED", "1", "GOARCH", "amd64", "GOOS", "linux", "GOAMD64", "v1",
		"DefaultGODEBUG", "cryptocustomrand=1"}
)

func with(base []string, kv ...string) []string {
	out := append([]string(nil), base...)
	for i := 0; i+1 < len(kv); i += 2 {
		replaced := false
		for j := 0; j+1 < len(out); j += 2 {
			if out[j] == kv[i] {
				out[j+1], replaced = kv[i+1], true
			}
		}
		if !replaced {
			out = append(out, kv[i], kv[i+1])
		}
	}
	return out
}

func TestCompareBuildInfo(t *testing.T) {
	dep := func(path, version string) *debug.Module {
		return &debug.Module{Path: path, Version: version, Sum: "h1:" + version}
	}
	withDeps := func(bi *debug.BuildInfo, main debug.Module, deps ...*debug.Module) *debug.BuildInfo {
		bi.Main, bi.Deps = main, deps
		return bi
	}
	sdkDir := &debug.Module{Path: "github.com/hotmod/hotmod/sdk", Version: "v0.0.0", Replace: &debug.Module{Path: "../sdk", Version: "(devel)"}}
	sdkOther := &debug.Module{Path: "github.com/hotmod/hotmod/sdk", Version: "v0.0.0", Replace: &debug.Module{Path: "/tmp/x/sdk"}}

	tests := []struct {
		name       string
		host, cand *debug.BuildInfo
		want       []string // one substring per expected problem, in order; nil = compatible
	}{
		{name: "same", host: info("go1.26.8", exeSettings...), cand: info("go1.26.8", pluginSettings...)},
		{name: "test binary host with -cover", host: info("go1.26.8", with(exeSettings, "-cover", "true")...), cand: info("go1.26.8", pluginSettings...)},
		{name: "tags and ldflags are not compared", host: info("go1.26.8", with(exeSettings, "-tags", "netgo", "-ldflags", "-s -w")...),
			cand: info("go1.26.8", with(pluginSettings, "-ldflags", "-X main.x=1")...)},
		{name: "no host build info", host: nil, cand: info("go1.26.8", pluginSettings...), want: []string{"no Go build info"}},
		{name: "go version", host: info("go1.26.8", exeSettings...), cand: info("go1.25.5", pluginSettings...),
			want: []string{"built with go1.25.5, this host runs go1.26.8: native modules need the host's exact toolchain — rebuild with go1.26.8"}},
		{name: "not a plugin", host: info("go1.26.8", exeSettings...), cand: info("go1.26.8", exeSettings...),
			want: []string{"it is a program (-buildmode=exe), not a plugin"}},
		{name: "race plugin", host: info("go1.26.8", exeSettings...), cand: info("go1.26.8", with(pluginSettings, "-race", "true")...),
			want: []string{"built with -race, this host without -race: native modules need the host's exact build settings — rebuild without -race"}},
		{name: "race host", host: info("go1.26.8", with(exeSettings, "-race", "true")...), cand: info("go1.26.8", pluginSettings...),
			want: []string{"built without -race, this host with -race"}},
		{name: "race both", host: info("go1.26.8", with(exeSettings, "-race", "true")...), cand: info("go1.26.8", with(pluginSettings, "-race", "true")...)},
		{name: "trimpath and gcflags", host: info("go1.26.8", with(exeSettings, "-trimpath", "true")...),
			cand: info("go1.26.8", with(pluginSettings, "-gcflags", "all=-N -l")...),
			want: []string{"built without -trimpath", "built with -gcflags=all=-N -l, this host without -gcflags"}},
		{name: "GOAMD64 and GOEXPERIMENT", host: info("go1.26.8", exeSettings...),
			cand: info("go1.26.8", with(pluginSettings, "GOAMD64", "v3", "GOEXPERIMENT", "greenteagc")...),
			want: []string{"built with GOAMD64=v3, this host with GOAMD64=v1", "built with GOEXPERIMENT=greenteagc, this host without GOEXPERIMENT"}},
		{name: "cgo off in host", host: info("go1.26.8", with(exeSettings, "CGO_ENABLED", "0")...), cand: info("go1.26.8", pluginSettings...),
			want: []string{"this host was built with CGO_ENABLED=0"}},
		{name: "pluginpath", host: info("go1.26.8", exeSettings...), cand: info("go1.26.8", with(pluginSettings, "-ldflags", "-pluginpath=foo")...),
			want: []string{"-pluginpath breaks the lookup of Module"}},
		{name: "shared module versions differ",
			host: withDeps(info("go1.26.8", exeSettings...), debug.Module{Path: "example.com/host", Version: "(devel)"},
				dep("example.com/x", "v1.2.0"), dep("example.com/hostonly", "v0.1.0")),
			cand: withDeps(info("go1.26.8", pluginSettings...), debug.Module{},
				dep("example.com/x", "v1.3.0"), dep("example.com/pluginonly", "v0.2.0")),
			want: []string{"module example.com/x is v1.3.0 in the artifact but v1.2.0 in this host"}},
		{name: "same version, different checksum",
			host: withDeps(info("go1.26.8", exeSettings...), debug.Module{}, &debug.Module{Path: "example.com/x", Version: "v1.2.0", Sum: "h1:a"}),
			cand: withDeps(info("go1.26.8", pluginSettings...), debug.Module{}, &debug.Module{Path: "example.com/x", Version: "v1.2.0", Sum: "h1:b"}),
			want: []string{"module example.com/x v1.2.0 has checksum h1:b in the artifact but h1:a in this host"}},
		{name: "directory replacements are left to the probe",
			host: withDeps(info("go1.26.8", exeSettings...), debug.Module{Path: "github.com/hotmod/hotmod", Version: "(devel)"}, sdkDir),
			cand: withDeps(info("go1.26.8", pluginSettings...), debug.Module{}, sdkOther)},
		{name: "test binary host has no deps",
			host: withDeps(info("go1.26.8", exeSettings...), debug.Module{Path: "github.com/hotmod/hotmod", Version: "(devel)"}),
			cand: withDeps(info("go1.26.8", pluginSettings...), debug.Module{}, dep("github.com/hotmod/hotmod", "v1.0.0"), sdkOther)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := compareBuildInfo(tt.host, tt.cand)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d = %q\nwant it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

// The test binary is a fine host: it has build info with the Go version and
// settings. Preflight of the test binary itself finds it is not a plugin.
func TestPreflightOfAProgram(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Preflight(exe)
	if err != nil {
		t.Fatal(err)
	}
	host := hostBuildInfo()
	if host == nil {
		t.Fatal("the test binary has no build info")
	}
	if rep.GoVersion != host.GoVersion || rep.Settings["-buildmode"] != "exe" {
		t.Errorf("report = %+v", rep)
	}
	if len(rep.Problems) != 1 || !strings.Contains(rep.Problems[0], "not a plugin") {
		t.Errorf("problems = %q, want only the -buildmode one", rep.Problems)
	}
}

func TestPreflightOfJunk(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, tt := range []struct{ name, content, want string }{
		{"truncated.so", string(data[:len(data)/2]), "is an ELF file without readable Go build info"},
		{"text.so", "#!/bin/sh\necho not a plugin\n", "not a Go plugin"},
		{"empty.so", "", "not a Go plugin"},
	} {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Preflight(path)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("Preflight(%s) = %v, want an error containing %q and the path", tt.name, err, tt.want)
		}
	}
	if _, err := Preflight(filepath.Join(dir, "missing.so")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Preflight(missing) = %v, want not-exist", err)
	}
}

func TestCrashSummary(t *testing.T) {
	tests := []struct{ stderr, want string }{
		{"fatal error: runtime: no plugin module data\n\ngoroutine 1 gp=0x1 m=0 [running]:\nruntime.throw(...)\n",
			"fatal error: runtime: no plugin module data"},
		{"SIGBUS: bus error\nPC=0x7fe874f12932 m=0 sigcode=2 addr=0x7fe827fc42e0\nsignal arrived during cgo execution\n\ngoroutine 1 [syscall]:\n",
			"SIGBUS: bus error; signal arrived during cgo execution"},
		{"some init output\npanic: boom\n\ngoroutine 1 [running]:\nmain.init.0()\n", "panic: boom"},
		{"unexpected fault address 0x0\nfatal error: fault\n[signal SIGSEGV: segmentation violation code=0x80 addr=0x0 pc=0x4]\n\ngoroutine 1",
			"unexpected fault address 0x0; fatal error: fault; [signal SIGSEGV: segmentation violation code=0x80 addr=0x0 pc=0x4]"},
		{"just\nsome\nwords\nhere\n", "just; some; words"},
		{"", "the child died without a word (boom)"},
	}
	for _, tt := range tests {
		if got := crashSummary([]byte(tt.stderr), errors.New("boom")); got != tt.want {
			t.Errorf("crashSummary(%q)\n got %q\nwant %q", tt.stderr, got, tt.want)
		}
	}
	if got := crashSummary(nil, nil); !strings.Contains(got, "os.Exit") {
		t.Errorf("crashSummary of a silent clean exit = %q", got)
	}
}
