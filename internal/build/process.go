package build

import (
	"context"
	"os"
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
	t, err := prepare(o)
	if err != nil {
		return "", err
	}
	return t.goBuild(ctx, o, ".process", append(os.Environ(), o.Env...), []string{"build"}, []string{"."}, nil)
}
