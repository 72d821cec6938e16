package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// fuseSource is a module whose init starts a goroutine that panics after
// 300ms, and whose method exit ends the process.
const fuseSource = `package main

import (
	"context"
	"os"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("fuse", "1.0.0").
	Handle("exit", func(context.Context, map[string]any) (map[string]any, error) { os.Exit(3); return nil, nil })

func init() {
	if os.Getenv("FUSE_PANIC") == "1" {
		go func() {
			time.Sleep(300 * time.Millisecond)
			panic("fuse: a goroutine of this module panicked")
		}()
	}
}

func main() { sdk.Main(Module) }
`

const helperEnv = "HOTMOD_CRASH_HELPER"

// TestCrashJournalHelper is the process that dies, run by
// TestLibraryCrashJournal.
func TestCrashJournalHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("run by TestLibraryCrashJournal")
	}
	reg := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithStateDir(os.Getenv("STATE")), hotmod.WithCacheDir(os.Getenv("CACHE")))
	if _, err := reg.Load(context.Background(), os.Getenv("ARTIFACT")); err != nil {
		t.Fatal(err)
	}
	if mode == "exit" {
		_, _ = reg.Invoke(context.Background(), "fuse", "exit", nil)
	}
	time.Sleep(10 * time.Second)
	t.Fatal("the module did not end the process")
}

// TestLibraryCrashJournal: a host that embeds hotmod with WithStateDir and
// is killed by a native module (a panic in the module's goroutine; os.Exit
// in a method) finds, on its next start, that module quarantined.
func TestLibraryCrashJournal(t *testing.T) {
	so := plugintest.Build(t, plugintest.Source(t, fuseSource))
	for _, c := range []struct{ mode, env, want string }{
		{"panic", "FUSE_PANIC=1", "panic: fuse: a goroutine of this module panicked"},
		{"exit", "", "during a call of fuse@1.0.0"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			state, cache := filepath.Join(t.TempDir(), "state"), t.TempDir() // a state directory must be private
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashJournalHelper$", "-test.v")
			cmd.Env = append(os.Environ(), helperEnv+"="+c.mode, "STATE="+state, "CACHE="+cache, "ARTIFACT="+so, c.env)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || strings.Contains(string(out), "did not end the process") {
				t.Fatalf("the helper did not die (%v):\n%s", err, out)
			}
			reg := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithStateDir(state), hotmod.WithCacheDir(cache))
			defer reg.Close(context.Background())
			q, err := reg.Quarantined()
			if err != nil || len(q) != 1 || q[0].Path != so || !strings.Contains(q[0].Reason, c.want) {
				t.Fatalf("quarantined after the crash: %+v, %v; want %s with %q", q, err, so, c.want)
			}
			_, err = reg.Load(context.Background(), so)
			if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), "quarantined") {
				t.Fatalf("loading the quarantined artifact: %v", err)
			}
			if lifted, err := reg.LiftQuarantine(filepath.Base(so)); err == nil || lifted != nil {
				t.Errorf("lifting by a name that is not a path or hash: %v, %v", lifted, err)
			}
			if lifted, err := reg.LiftQuarantine(q[0].Sum[:12]); err != nil || len(lifted) != 1 {
				t.Errorf("lifting by hash: %v, %v", lifted, err)
			}
			if q, _ := reg.Quarantined(); len(q) != 0 {
				t.Errorf("still quarantined after the lift: %+v", q)
			}
		})
	}
}
