package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestContractDiffGatesBreakingChanges builds pricing as it is and two
// successors — one whose minor bump hides a breaking change, one that is
// honest about it — and runs the real `hotmod contract` on them, as CI would.
func TestContractDiffGatesBreakingChanges(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real plugins; skipped with -short")
	}
	env := []string{}
	out := t.TempDir()
	build := func(name string, edits ...string) string {
		src := plugintest.Example(t, "pricing", edits...)
		r := mustRun(t, env, "build", "-o", out, src)
		built := strings.TrimSpace(r.stdout)
		path := filepath.Join(out, name+".so")
		if err := os.Rename(built, path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// Dropping the "code" alias breaks callers that still send it.
	dropAlias := []string{`alias=code|voucher`, `alias=voucher`}
	old := build("old")
	sneaky := build("sneaky", append([]string{`const version = "1.1.0"`, `const version = "1.2.0"`}, dropAlias...)...)
	honest := build("honest", append([]string{`const version = "1.1.0"`, `const version = "2.0.0"`}, dropAlias...)...)

	manifest := filepath.Join(t.TempDir(), "pricing.manifest.json")
	exp := mustRun(t, env, "contract", "export", old)
	if !strings.Contains(exp.stdout, `"name": "pricing"`) || !strings.Contains(exp.stdout, `"fingerprint"`) {
		t.Fatalf("export: %s", exp)
	}
	if err := os.WriteFile(manifest, []byte(exp.stdout), 0o644); err != nil {
		t.Fatal(err)
	}

	r := hotmodRun(t, env, "", "contract", "diff", manifest, sneaky)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "code") || !strings.Contains(r.stdout+r.stderr, "major") {
		t.Fatalf("a breaking change under a minor bump must fail the diff:\n%s", r)
	}
	if r := mustRun(t, env, "contract", "diff", manifest, honest); !strings.Contains(r.stdout, "major") {
		t.Fatalf("the same change under a major bump passes and says so:\n%s", r)
	}
	if r := mustRun(t, env, "contract", "diff", old, old); r.stdout == "" {
		t.Fatalf("an artifact against itself: %s", r)
	}
}
