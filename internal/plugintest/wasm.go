package plugintest

import (
	"testing"

	"github.com/hotmod/hotmod/internal/build"
)

// BuildWasm builds the module in dir as a wasm module (GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared, as `hotmod build --transport wasm` does)
// into a temporary directory and returns the artifact's path. env is extra
// environment for the go command; "GOTOOLCHAIN=go1.24.13" builds with an
// older Go, which is the point of the transport. Without it the toolchain
// is the one the environment picks. A failed build fails the test with the
// go command's output.
//
//	dir := plugintest.Example(t, "pricing")
//	old := plugintest.BuildWasm(t, dir, "GOTOOLCHAIN=go1.24.13")
func BuildWasm(t testing.TB, dir string, env ...string) string {
	t.Helper()
	return buildWith(t, build.Wasm, dir, env)
}
