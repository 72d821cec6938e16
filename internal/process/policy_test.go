package process

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/sdk"
)

// TestLaunchCommandPolicy: with nothing allowed, a launch file may start a
// program inside its own directory and nothing else; an allowed command
// works by name and by the path it resolves to.
func TestLaunchCommandPolicy(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := "#!/bin/sh\nexec '" + exe + "' -test.run='^$'\n"
	if err := os.WriteFile(filepath.Join(dir, "child.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	inside := filepath.Join(dir, "inside"+LaunchExt)
	if err := os.WriteFile(inside, []byte(`{"command": "./child.sh", "env": {"`+testChildEnv+`": "helper"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := testConfig(t)
	cfg.AllowCommands = nil
	if inst := load(t, cfg, inside); inst.Manifest().Name != "helper" {
		t.Fatalf("manifest %+v", inst.Manifest())
	}

	outside := launch(t, "helper") // names the test binary by its absolute path
	_, err = NewLoader(cfg).Load(context.Background(), outside)
	if err == nil || !strings.Contains(err.Error(), "not on the allow-list of commands (allowed: none)") {
		t.Fatalf("a command outside the directory, nothing allowed: %v", err)
	}
	cfg.AllowCommands = []string{exe}
	load(t, cfg, outside)

	if err := CheckCommands([]string{"sh", exe}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"no-such-program-here", "bin/sh", ""} {
		if err := CheckCommands([]string{bad}); err == nil {
			t.Errorf("CheckCommands(%q) passed", bad)
		}
	}
}

// TestMaxSize: an executable larger than MaxSize is refused before it is
// copied or started.
func TestMaxSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "big"+ExecutableExt)
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+strings.Repeat("#", 2000)+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg, _ := testConfig(t)
	cfg.MaxSize = 2000
	_, err := NewLoader(cfg).Load(context.Background(), path)
	wantCode(t, err, sdk.CodeIncompatible, "2011 bytes is larger than the 2000 allowed")
	if entries, _ := os.ReadDir(cfg.Dir); len(entries) != 0 {
		t.Errorf("a private copy was made: %v", entries)
	}
}
