package build

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestBuildEnv(t *testing.T) {
	host, _ := HostToolchain()
	tests := []struct {
		name           string
		environ, extra []string
		want           string // the GOTOOLCHAIN the go command sees
	}{
		{"host's release by default", []string{"PATH=/bin"}, nil, host},
		{"the environment's choice wins", []string{"GOTOOLCHAIN=local"}, nil, "local"},
		{"Options.Env wins", []string{"GOTOOLCHAIN=local"}, []string{"GOTOOLCHAIN=go1.25.5"}, "go1.25.5"},
		{"Options.Env alone", nil, []string{"GOTOOLCHAIN=go1.24.0"}, "go1.24.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := buildEnv(tt.environ, tt.extra)
			if got := lookupEnv(env, "GOTOOLCHAIN"); got != tt.want {
				t.Errorf("GOTOOLCHAIN = %q, want %q (env %q)", got, tt.want, env)
			}
			if got := lookupEnv(env, "CGO_ENABLED"); got != "1" {
				t.Errorf("CGO_ENABLED = %q", got)
			}
			if got := lookupEnv(env, "GOARCH"); got != runtime.GOARCH {
				t.Errorf("GOARCH = %q", got)
			}
		})
	}
	// A stray GOAMD64 or GOEXPERIMENT in the environment cannot make an
	// artifact the host refuses; Options.Env still can (on purpose).
	env := buildEnv([]string{"GOEXPERIMENT=nosuchthing", "GOAMD64=v3"}, nil)
	if lookupEnv(env, "GOEXPERIMENT") != "" || (runtime.GOARCH == "amd64" && lookupEnv(env, "GOAMD64") == "v3") {
		t.Errorf("host settings do not override the environment: %q", env)
	}
	if env := buildEnv(nil, []string{"GOAMD64=v3"}); runtime.GOARCH == "amd64" && lookupEnv(env, "GOAMD64") != "v3" {
		t.Errorf("Options.Env does not win: %q", env)
	}
}

func TestReleaseVersion(t *testing.T) {
	for in, want := range map[string]string{
		"go1.26.8":                      "go1.26.8",
		"go1.22":                        "go1.22",
		"go1.27rc1":                     "go1.27rc1",
		"go1.26.8 X:boringcrypto":       "go1.26.8",
		"devel go1.27-abcdef Mon Jan 1": "",
		"":                              "",
	} {
		if got := releaseVersion(in); got != want {
			t.Errorf("releaseVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSourceFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"main.go", "util.go", "main_test.go", "_skip.go", ".hidden.go", "README.md", "other_linux.go"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("package main\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.go"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := sourceFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"main.go", "other_linux.go", "util.go"}; !slices.Equal(got, want) {
		t.Errorf("sourceFiles = %q, want %q", got, want)
	}
	if err := os.WriteFile(filepath.Join(dir, "asm_amd64.s"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := sourceFiles(dir); err == nil || !strings.Contains(err.Error(), "asm_amd64.s") {
		t.Errorf("a .s file: %v", err)
	}
}
