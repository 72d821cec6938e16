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

// Process builds the package in o.Dir as a process module — an ordinary
// executable whose main calls sdk.Main — and returns the artifact's absolute
// path, `<Out>/<Name>.process`. It is written under a temporary name in Out
// and renamed into place, so a directory watcher never sees a half-written
// file.
//
// Unlike Native, Process does not impose the host's toolchain or flags: a
// process module crosses a process boundary, not a linker's, so it may be
// built by any Go toolchain that builds the sdk (Go 1.22 or later). The go
// command runs with the environment as it is, then o.Env: GOTOOLCHAIN,
// GOFLAGS, CGO_ENABLED and the rest are the user's choice.
func Process(ctx context.Context, o Options) (string, error) {
	if o.Dir == "" {
		return "", errors.New("build: no package directory given")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("build: %s is not a package directory", o.Dir)
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
	if name == "" || name == "." || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) {
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

	file := name + ".process"
	args := []string{"build", "-o", filepath.Join(tmp, file), "."}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), o.Env...)
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
		return "", fmt.Errorf("build: `go %s` in %s failed: %w\n%s",
			strings.Join(args, " "), dir, err, strings.TrimSpace(output.String()))
	}
	path := filepath.Join(out, file)
	if err := os.Rename(filepath.Join(tmp, file), path); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return path, nil
}
