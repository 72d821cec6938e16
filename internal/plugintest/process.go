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
	return buildWith(t, build.Process, dir, env)
}
