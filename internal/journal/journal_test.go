package journal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// die leaves r as a process that ended suddenly leaves it: its lock
// released, nothing else done.
func die(r *Run) {
	r.mu.Lock()
	r.closed = true
	for _, t := range r.timers {
		t.Stop()
	}
	r.mu.Unlock()
	r.loads.Close()
	r.slots.Close()
}

func stateDir(t *testing.T) string { return filepath.Join(t.TempDir(), "state") }

func TestCollectSkipsLiveAndReadsDead(t *testing.T) {
	dir := stateDir(t)
	live, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	dead, err := Start(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.Opening("aa11", "/m/a.so", "/c/aa11.so", "a", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	busy := dead.Counter("a", "1.0.0", "native", "aa11", "/m/a.so")
	idle := dead.Counter("b", "2.0.0", "native", "bb22", "/m/b.so")
	busy.Add(1)
	idle.Add(1)
	idle.Add(-1)
	die(dead)

	got, err := Collect(dir)
	if err != nil || len(got) != 1 {
		t.Fatalf("Collect: %+v, %v; want the dead run only", got, err)
	}
	d := got[0]
	if len(d.Opens) != 1 || d.Opens[0].Sum != "aa11" || d.Opens[0].Settled {
		t.Errorf("opens: %+v", d.Opens)
	}
	if len(d.Calls) != 1 || d.Calls[0].Module != "a" || d.Calls[0].Calls != 1 {
		t.Errorf("calls in flight: %+v", d.Calls)
	}
	if d.Clean {
		t.Errorf("a run that died is not clean")
	}
}

func TestAttribute(t *testing.T) {
	now := time.Now()
	opens := []Open{
		{Time: now.Add(-2 * time.Second), Sum: "s1", Path: "/m/new.so", Module: "new"},
		{Time: now.Add(-time.Minute), Sum: "s2", Path: "/m/old.so", Module: "old", Settled: true},
	}
	call := func(m, sum string) InFlight {
		return InFlight{Module: m, Version: "1.0.0", Transport: "native", Sum: sum, Calls: 1}
	}
	cases := []struct {
		name        string
		d           Dead
		c           Crash
		sure, maybe []string // sums
		why         string
	}{
		{"one native call running", Dead{Opens: opens, Calls: []InFlight{call("old", "s2")}},
			Crash{Died: now, Status: "exit status 3"}, []string{"s2"}, nil, "during a call of old@1.0.0"},
		{"two calls running: strikes, and the recent load", Dead{Opens: opens, Calls: []InFlight{call("old", "s2"), call("x", "s3")}},
			Crash{Died: now, Status: "exit status 3"}, nil, []string{"s2", "s3", "s1"}, ""},
		{"nothing running: the recent load gets a strike", Dead{Opens: opens},
			Crash{Died: now, Status: "exit status 1"}, nil, []string{"s1"}, ""},
		{"unknown time of death: what had not settled", Dead{Opens: opens}, Crash{}, nil, []string{"s1"}, ""},
		{"SIGKILL names no one", Dead{Opens: opens, Calls: []InFlight{call("old", "s2")}},
			Crash{Died: now, Status: "signal: killed"}, nil, nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Attribute(c.d, c.c)
			if !sameSums(v.Sure, c.sure) || !sameSums(v.Maybe, c.maybe) {
				t.Fatalf("sure %+v, maybe %+v; want %v, %v", v.Sure, v.Maybe, c.sure, c.maybe)
			}
			if c.why != "" && !strings.Contains(v.Sure[0].Why, c.why) {
				t.Errorf("why: %s", v.Sure[0].Why)
			}
		})
	}
}

func sameSums(s []Suspect, sums []string) bool {
	if len(s) != len(sums) {
		return false
	}
	for i := range s {
		if s[i].Sum != sums[i] {
			return false
		}
	}
	return true
}

func TestJudgeStrikesAndLift(t *testing.T) {
	dir := stateDir(t)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	maybe := Verdict{Maybe: []Suspect{{Sum: "aaaaaaaa11", Path: "/m/a.so", Why: "x"}, {Sum: "bbbbbbbb22", Path: "/m/b.so", Why: "y"}}}
	added, err := Judge(dir, maybe, Crash{Tail: []string{"line"}})
	if err != nil || len(added) != 0 {
		t.Fatalf("first death with two suspects: %+v, %v; want strikes only", added, err)
	}
	added, err = Judge(dir, maybe, Crash{})
	if err != nil || len(added) != 2 || !strings.Contains(added[0].Reason, "2 deaths in a row") {
		t.Fatalf("second death: %+v, %v; want both quarantined", added, err)
	}
	l, _ := Load(dir)
	if len(l.Entries) != 2 || len(l.Strikes) != 0 {
		t.Errorf("list: %+v", l)
	}
	if _, err := Lift(dir, "nothing"); err == nil || !strings.Contains(err.Error(), "aaaaaaaa11") {
		t.Errorf("lifting what is not there: %v", err)
	}
	if lifted, err := Lift(dir, "/m/a.so"); err != nil || len(lifted) != 1 {
		t.Errorf("lift by path: %+v, %v", lifted, err)
	}
	if err := Forget(dir, "/m/b.so", "cccccccc33"); err != nil {
		t.Fatal(err)
	}
	if l, _ := Load(dir); len(l.Entries) != 0 {
		t.Errorf("a file with new bytes is still quarantined: %+v", l.Entries)
	}
}
