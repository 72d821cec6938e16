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
	"strings"
)

// Wasm builds the package in o.Dir as a wasm module and returns the
// artifact's absolute path, `<Out>/<Name>.wasm`: GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared (a library whose package initialisation runs when the
// host starts it, and whose exports come from the SDK), -trimpath (the same
// sources give the same bytes, so the host's compilation cache hits on any
// machine). The artifact is written under a temporary name in Out and
// renamed into place, so a directory watcher never sees a half-written file.
//
// Unlike Native, Wasm uses whatever `go` toolchain the environment picks
// (GOTOOLCHAIN, the module's go and toolchain lines): a wasm module does not
// have to match the host, only be built by Go 1.24 or newer
// (//go:wasmexport). o.Env can pick another, e.g. "GOTOOLCHAIN=go1.24.13".
func Wasm(ctx context.Context, o Options) (string, error) {
	if o.Dir == "" {
		return "", errors.New("build: no package directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("build: %w", err)
	} else if !fi.IsDir() {
		return "", fmt.Errorf("build: %s is not a directory", dir)
	}
	out := o.Out
	if out == "" {
		out = "."
	}
	if out, err = filepath.Abs(out); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	name := o.Name
	if name == "" {
		name = filepath.Base(dir)
	}
	if name == "" || name == "." || name == string(filepath.Separator) || strings.ContainsRune(name, filepath.Separator) {
		return "", fmt.Errorf("build: %q is not a usable artifact name", name)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	tmp, err := os.MkdirTemp(out, ".hotmod-build-")
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	defer os.RemoveAll(tmp)

	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-o", filepath.Join(tmp, name+".wasm"), "."}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = wasmEnv(os.Environ(), o.Env)
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
		if strings.Contains(msg, "-buildmode=c-shared not supported on wasip1/wasm") {
			msg += "\nwasm modules need Go 1.24 or newer (//go:wasmexport): pick one with GOTOOLCHAIN, e.g. GOTOOLCHAIN=go1.24.13"
		}
		return "", fmt.Errorf("build: `GOOS=wasip1 GOARCH=wasm go %s` in %s failed: %w\n%s",
			strings.Join(args, " "), dir, err, msg)
	}
	path := filepath.Join(out, name+".wasm")
	if err := os.Rename(filepath.Join(tmp, name+".wasm"), path); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return path, nil
}

// wasmEnv returns the go command's environment for a wasm build: the
// process environment, the target, then the caller's extra.
func wasmEnv(environ, extra []string) []string {
	env := append([]string(nil), environ...)
	env = append(env, "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	return append(env, extra...)
}
