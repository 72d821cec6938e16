package plugintest

import (
	"testing"

	"github.com/hotmod/hotmod/internal/build"
)

// BuildProcess builds the module in dir as a process module (an executable,
// NAME.process) into a temporary directory and returns the artifact's path.
// env is extra environment for the go command: "GOTOOLCHAIN=go1.22.12"
// builds it with an older Go, which a process module may use. A failed
// build fails the test with the go command's output.
func BuildProcess(t testing.TB, dir string, env ...string) string {
	t.Helper()
	path, err := build.Process(t.Context(), build.Options{
		Dir: dir,
		Out: t.TempDir(),
		// The temporary module lives outside any workspace, but a go.work
		// higher up (GOWORK in the environment) must not capture it.
		Env: append([]string{"GOWORK=off"}, env...),
	})
	if err != nil {
		t.Fatalf("plugintest: %v", err)
		return ""
	}
	return path
}
