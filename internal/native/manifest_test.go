package native

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
)

func TestReadManifest(t *testing.T) {
	t.Parallel()
	so := plugintest.Build(t, plugintest.Source(t, adderSrc))
	m, err := ReadManifest(t.Context(), so)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "adder" || m.Version == "" {
		t.Errorf("ReadManifest = %+v, want the adder module's manifest", m)
	}

	junk := filepath.Join(t.TempDir(), "junk.so")
	if err := os.WriteFile(junk, []byte("not a plugin"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(t.Context(), junk); err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("ReadManifest of junk: %v, want an error naming the file", err)
	}
}
