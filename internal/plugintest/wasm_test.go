package plugintest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
)

func TestBuildWasm(t *testing.T) {
	path := plugintest.BuildWasm(t, plugintest.Example(t, "greeter"))
	if filepath.Ext(path) != ".wasm" {
		t.Errorf("BuildWasm returned %s", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("\x00asm")) || !bytes.Contains(data, []byte("hotmod_call")) {
		t.Errorf("%s is not a hotmod wasm module", path)
	}
}
