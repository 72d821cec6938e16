package integration

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// TestProcess runs greeter as a process module in a watched directory: a
// swap under load loses no call, a killed child is restarted, a version
// whose children keep dying is Failed with a reason, and the Python module
// loads from its launch file.
func TestProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds real modules; skipped with -short")
	}
	v1 := plugintest.BuildProcess(t, plugintest.Example(t, "greeter"))
	v2 := plugintest.BuildProcess(t, plugintest.Example(t, "greeter", greeterV2...))

	t.Run("SwapUnderLoad", func(t *testing.T) { swapUnderLoad(t, "greeter.process", v1, v2) })

	t.Run("KilledChildRestarts", func(t *testing.T) {
		dir := t.TempDir()
		place(t, v1, dir, "greeter.process")
		reg := watch(t, dir)
		pid := childOf(t, "greeter.process")
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a call answered after the restart", func() bool {
			msg, _ := hello(reg, "greeter")
			return msg == "hello, Ada"
		})
	})

	t.Run("CrashLoopFails", func(t *testing.T) {
		dir := t.TempDir()
		place(t, plugintest.BuildProcess(t, plugintest.Source(t, dying)), dir, "dying.process")
		reg := watch(t, dir)
		// Each call kills the child; after repeated crashes the transport
		// gives up and the registry marks the version Failed.
		waitFor(t, "dying Failed", func() bool {
			_, _ = reg.Invoke(context.Background(), "dying", "die", nil)
			m := reg.Modules()
			return len(m) == 1 && m[0].State == hotmod.StateFailed
		})
		m := reg.Modules()[0]
		if !strings.Contains(m.Reason, "failed while active") {
			t.Errorf("reason: %q", m.Reason)
		}
		if _, err := reg.Invoke(context.Background(), "dying", "die", nil); !errors.Is(err, hotmod.ErrNotActive) {
			t.Fatalf("a call to the failed version: %v; want not_active", err)
		}
	})

	t.Run("Python", func(t *testing.T) {
		if _, err := exec.LookPath("python3"); err != nil {
			t.Fatal("python3 is needed for the Python example module")
		}
		dir := t.TempDir()
		src := filepath.Join(plugintest.Repo(t), "examples", "python")
		for _, f := range []string{"textstats.py", "textstats.process.json"} {
			place(t, filepath.Join(src, f), dir, f) // the launch file last: it is what the watcher loads
		}
		reg := watch(t, dir, hotmod.WithAllowCommands("python3"))
		waitFor(t, "textstats active", func() bool { return len(active(reg)) == 1 })
		out, err := reg.Invoke(context.Background(), "textstats", "count_words", map[string]any{"text": "to be or not to be"})
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := out["words"].(int64); !ok || n != 6 {
			t.Fatalf("count_words = %v; want 6 words as an int64", out)
		}
		if _, err := reg.Invoke(context.Background(), "textstats", "count_words", map[string]any{"text": 7}); !errors.Is(err, hotmod.ErrBadParams) {
			t.Fatalf("a number for text: %v; want bad_params", err)
		}
	})
}

const dying = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("dying", "1.0.0").
	Handle("die", func(context.Context, map[string]any) (map[string]any, error) { os.Exit(3); return nil, nil })

func main() { sdk.Main(Module) }
`

// childOf returns the pid of the one running process whose command line
// mentions name (the process transport runs the private copy through
// /proc/self/fd, so the artifact's name is looked for in the arguments and
// in the executable's link).
func childOf(t *testing.T, name string) int {
	t.Helper()
	var pids []int
	waitFor(t, "the child process of "+name, func() bool {
		pids = pids[:0]
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid := 0
			for _, c := range e.Name() {
				if c < '0' || c > '9' {
					pid = -1
					break
				}
				pid = pid*10 + int(c-'0')
			}
			if pid <= 0 || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
			if err != nil || !strings.Contains(string(env), "HOTMOD_PROCESS=1") {
				continue
			}
			if ppid := parentOf(e.Name()); ppid == os.Getpid() {
				pids = append(pids, pid)
			}
		}
		return len(pids) == 1
	})
	return pids[0]
}

func parentOf(pid string) int {
	stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
	if err != nil {
		return 0
	}
	// pid (comm) state ppid …; comm may hold spaces, so split after ')'.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	var ppid int
	fields := strings.Fields(s[i+1:])
	if len(fields) > 1 {
		for _, c := range fields[1] {
			ppid = ppid*10 + int(c-'0')
		}
	}
	return ppid
}
