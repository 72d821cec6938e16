package build

import (
	"context"
	"os"
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
	t, err := prepare(o)
	if err != nil {
		return "", err
	}
	args := []string{"build", "-buildmode=c-shared", "-trimpath"}
	return t.goBuild(ctx, o, ".wasm", wasmEnv(os.Environ(), o.Env), args, []string{"."}, func(msg string) string {
		if strings.Contains(msg, "-buildmode=c-shared not supported on wasip1/wasm") {
			msg += "\nwasm modules need Go 1.24 or newer (//go:wasmexport): pick one with GOTOOLCHAIN, e.g. GOTOOLCHAIN=go1.24.13"
		}
		return msg
	})
}

// wasmEnv returns the go command's environment for a wasm build: the
// process environment, the target, then the caller's extra.
func wasmEnv(environ, extra []string) []string {
	env := append([]string(nil), environ...)
	env = append(env, "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	return append(env, extra...)
}
