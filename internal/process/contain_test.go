package process

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/proctree"
)

// setsidScript starts two sleepers in sessions of their own before it
// becomes the helper module: one stays its child, the other is orphaned at
// once (its parent, a subshell, exits). Each writes its pid to $PIDS.
const setsidScript = `setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 300' &
(setsid sh -c 'echo $$ >> "$PIDS"; exec sleep 301' &)
exec "$EXE" -test.run='^$'`

// launchSetsid writes a launch file that runs setsidScript, recording pids
// in the file it returns.
func launchSetsid(t *testing.T) (launchFile, pidFile string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pidFile = filepath.Join(dir, "pids")
	data, err := json.Marshal(map[string]any{"command": "sh", "args": []string{"-c", setsidScript},
		"protocol": "cbor", "env": map[string]string{testChildEnv: "helper", "EXE": exe, "PIDS": pidFile}})
	if err != nil {
		t.Fatal(err)
	}
	launchFile = filepath.Join(dir, "setsid"+LaunchExt)
	if err := os.WriteFile(launchFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return launchFile, pidFile
}

// TestContainedChildren: processes a child starts in sessions of their own
// (setsid), still its children or orphaned, end when the module is closed
// and when the child crashes. Three ways: what every Loader does (the tree
// and the marker, searched in all of /proc), as a subreaper, and as a
// subreaper with a cgroup per child where the host may make one. The
// subreaper is process-wide: the plain case runs first.
func TestContainedChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("containment beyond the process group is Linux's")
	}
	cases := []struct {
		name             string
		contain, cgroups bool
	}{{"plain", false, false}, {"subreaper", true, false}, {"cgroup", true, true}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.Contain = c.contain
			l := NewLoader(cfg)
			if c.contain && !proctree.IsSubreaper() {
				t.Fatal("Contain did not make the test process a subreaper")
			}
			if !c.cgroups && l.cfg.cgroups != nil {
				l.cfg.cgroups.Close()
				l.cfg.cgroups = nil
			}
			if c.cgroups && l.cfg.cgroups == nil {
				_, err := proctree.OpenCgroups()
				t.Skipf("no cgroup here: %v", err)
			}
			defer l.Close()
			path, pidFile := launchSetsid(t)
			inst, err := l.Load(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			if c.cgroups {
				cg, _ := os.ReadFile("/proc/" + strconv.Itoa(inst.PIDs()[0]) + "/cgroup")
				if !strings.Contains(string(cg), "/hotmod."+strconv.Itoa(os.Getpid())+".") {
					t.Errorf("the child is not in a cgroup of the host's: %s", cg)
				}
			}

			// The child crashes: what it started goes with it.
			first := plugintest.PIDsIn(t, pidFile, 2)
			for _, p := range first {
				if !plugintest.Running(p) {
					t.Fatalf("grandchild %d is not running before the crash", p)
				}
			}
			if _, err := inst.Invoke(context.Background(), "crash", nil); err == nil {
				t.Fatal("crash answered")
			}
			plugintest.WaitEnded(t, "after the child crashed", first)

			// The supervisor restarts it, and it starts two more; closing
			// the module (what an unload does) ends them.
			second := plugintest.PIDsIn(t, pidFile, 4)[2:]
			if _, err := inst.Invoke(context.Background(), "pid", nil); err != nil {
				t.Fatal(err)
			}
			if err := inst.Close(); err != nil {
				t.Fatal(err)
			}
			plugintest.WaitEnded(t, "after the module was closed", second)
			if c.contain {
				waitReaped(t, append(first, second...))
			}
		})
	}
}

// waitReaped fails the test if a subreaper leaves any of pids a zombie.
func waitReaped(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var zombies []int
		for _, p := range pids {
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err == nil {
				zombies = append(zombies, p)
			}
		}
		if len(zombies) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes %v were killed but not reaped", zombies)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
