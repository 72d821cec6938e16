//go:build linux

package proctree

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDescendants: a shell's child and grandchild are found from its pid.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", `sh -c 'sleep 300 & echo $!; wait' & wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	buf := make([]byte, 32)
	n, _ := out.Read(buf)
	sleeper, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		t.Fatalf("the sleeper's pid: %q", buf[:n])
	}
	got := Descendants(cmd.Process.Pid)
	if len(got) != 2 || got[1] != sleeper {
		t.Errorf("Descendants = %v; want [the inner shell, %d]", got, sleeper)
	}
	for _, p := range append(got, cmd.Process.Pid) {
		killPid(p)
	}
}

// TestSweep: what a dead host's trees left, in a session of its own and
// marked as that host's, is killed.
func TestSweep(t *testing.T) {
	const deadHost = 999999999 // no live process has this pid
	cmd := exec.Command("setsid", "sleep", "300")
	cmd.Env = append(os.Environ(), MarkerEnv+"="+strconv.Itoa(deadHost)+".7")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	// setsid execs sleep in place (it is not a group leader here).
	if n := Sweep(deadHost); n < 1 {
		t.Errorf("Sweep killed %d processes; want the sleeper", n)
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("the sleeper ended with %v; want killed", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the sleeper still runs 5s after Sweep")
	}
}

func killPid(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

// TestJanitor: as a subreaper, an orphan of one of this process's trees
// that exits by itself is reaped, not left a zombie.
func TestJanitor(t *testing.T) {
	if !IsSubreaper() { // before the janitor starts: it reads it
		janitorEvery = 20 * time.Millisecond
	}
	if err := BecomeSubreaper(); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command("sh", "-c", `(sleep 1 >/dev/null & echo $!)`)
	cmd.Env = append(os.Environ(), MarkerEnv+"="+strconv.Itoa(os.Getpid())+".999")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("the orphan's pid: %q", out)
	}
	if ppid, ok := parent(orphan); !ok || ppid != os.Getpid() {
		t.Fatalf("the orphan's parent is %d (%v); want this subreaper, %d", ppid, ok, os.Getpid())
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat("/proc/" + strconv.Itoa(orphan)); err != nil {
			return // exited and reaped
		}
		if time.Now().After(deadline) {
			t.Fatalf("the orphan %d is still there (a zombie?) 4s after it exited", orphan)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
