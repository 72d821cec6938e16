package rollout

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	cases := []struct {
		kind, steps string
		interval    time.Duration
		want        string
		err         string
	}{
		{"", "", 0, "immediate", ""},
		{"manual", "", 0, "manual", ""},
		{"canary", "", 0, "canary 10,50,100% every 30s", ""},
		{"canary", "5, 25%,50", time.Second, "canary 5,25,50,100% every 1s", ""},
		{"canary", "50,10", time.Second, "", "above the one before it"},
		{"canary", "10,x", time.Second, "", `"x" is not a whole percentage`},
		{"canary", "10,150", time.Second, "", "at most 100"},
		{"canary", "10", time.Millisecond, "", "shorter than 10ms"},
		{"blue-green", "", 0, "", "use immediate, canary or manual"},
	}
	for _, c := range cases {
		p, err := Parse(c.kind, c.steps, c.interval)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q, %q, %s) = %v, want an error with %q", c.kind, c.steps, c.interval, err, c.err)
			}
			continue
		}
		if err != nil || p.String() != c.want {
			t.Errorf("Parse(%q, %q, %s) = %q, %v; want %q", c.kind, c.steps, c.interval, p, err, c.want)
		}
	}
}

// sample makes a Sample of calls with failures, all taking d.
func sample(calls, failures int64, d time.Duration) Sample {
	var c Counters
	for i := int64(0); i < calls; i++ {
		c.Record(d, i < failures)
	}
	return c.Sample()
}

func TestP99(t *testing.T) {
	var c Counters
	for i := 0; i < 990; i++ {
		c.Record(100*time.Microsecond, false)
	}
	if p := c.Sample().P99(); p < 100*time.Microsecond || p > 200*time.Microsecond {
		t.Errorf("p99 of 990 calls of 100µs = %s", p)
	}
	for i := 0; i < 20; i++ { // 2 % slow: the p99 call is slow now
		c.Record(50*time.Millisecond, false)
	}
	if p := c.Sample().P99(); p < 50*time.Millisecond || p > 100*time.Millisecond {
		t.Errorf("p99 with 2 %% of calls at 50ms = %s", p)
	}
	if (Sample{}).P99() != 0 {
		t.Error("p99 of nothing is not 0")
	}
	if d := c.Sample().Sub(c.Sample()); d.Calls != 0 || d.P99() != 0 {
		t.Errorf("a sample less itself = %+v", d)
	}
}

func TestJudge(t *testing.T) {
	th := DefaultThresholds
	ms := time.Millisecond
	cases := []struct {
		name           string
		canary, stable Sample
		want           string
	}{
		{"too few calls", sample(19, 19, ms), sample(1000, 0, ms), ""},
		{"a third fail", sample(412, 137, ms), sample(1000, 2, ms), "33 % failures over 412 calls vs 0.2 % on 1.0.0"},
		{"as bad as stable", sample(100, 10, ms), sample(1000, 100, ms), ""},
		{"under the 1 % margin", sample(1000, 9, ms), sample(1000, 1, ms), ""},
		{"twice stable and over the margin", sample(1000, 50, ms), sample(1000, 20, ms), "5.0 % failures over 1000 calls vs 2.0 % on 1.0.0"},
		{"a few failures", sample(40, 4, ms), sample(1000, 0, ms), ""},
		{"slow", sample(600, 0, 40*ms), sample(600, 0, ms), "p99 latency ≤ 67ms over 600 timed calls vs ≤ 1.049ms on 1.0.0"},
		{"slow, too few calls", sample(150, 0, 40*ms), sample(600, 0, ms), ""},
		{"slower but within the margin", sample(600, 0, 3*ms), sample(600, 0, ms), ""},
		{"slow, nothing to compare with", sample(600, 0, 40*ms), sample(3, 0, ms), ""},
	}
	for _, c := range cases {
		if got := th.Judge(c.canary, c.stable, "1.0.0"); got != c.want {
			t.Errorf("%s: Judge = %q, want %q", c.name, got, c.want)
		}
	}
}

// TestSteps walks a canary through its steps with a fake clock.
func TestSteps(t *testing.T) {
	p, err := NewCanary([]int{10, 50}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_700_000_000, 0)
	r := Start("pricing", "1.0.0", "1.1.0", p, t0)
	th := DefaultThresholds
	healthy := sample(100, 0, time.Millisecond)
	var got []string
	now := t0
	for i := 0; i < 10; i++ {
		now = now.Add(20 * time.Second)
		d := r.Next(now, healthy, healthy, th)
		got = append(got, fmt.Sprintf("%d:%d", r.Percent(), d.Action))
		if d.Action == Advance {
			r.Advance(now)
		}
		if d.Action == Complete {
			break
		}
	}
	if want := "10:0 10:0 10:1 50:0 50:0 50:2"; strings.Join(got, " ") != want {
		t.Errorf("percent:action over time = %v, want %s", got, want)
	}

	r = Start("pricing", "1.0.0", "1.1.0", p, t0)
	d := r.Next(t0.Add(time.Second), sample(60, 20, time.Millisecond), healthy, th)
	if d.Action != RollBack || d.Reason != "rolled back at 10 %: 33 % failures over 60 calls vs 0 % on 1.0.0" {
		t.Errorf("a faulty canary: %+v", d)
	}
	if !strings.Contains(r.Then(), "50 % at ") {
		t.Errorf("Then at the first step: %s", r.Then())
	}
	if r.Promote(t0) || r.Percent() != 50 || !r.Promote(t0) {
		t.Errorf("promote: the next step, then completion")
	}

	m := Start("pricing", "1.0.0", "1.1.0", Policy{Kind: Manual}, t0)
	if m.Percent() != 0 || m.Next(t0.Add(time.Hour), healthy, healthy, th).Action != Hold || !m.Promote(t0) {
		t.Errorf("a manual candidate waits Standby and completes when promoted: %+v", m)
	}
}

func TestKeyBucket(t *testing.T) {
	if KeyBucket("user-42") != KeyBucket("user-42") {
		t.Fatal("a key's bucket changes")
	}
	// Keys spread evenly: about 10 % of 10000 keys below a 10 % weight.
	n := 0
	for i := 0; i < 10000; i++ {
		if KeyBucket(fmt.Sprintf("user-%d", i)) < 1000 {
			n++
		}
	}
	if n < 900 || n > 1100 {
		t.Errorf("%d of 10000 keys fall under a 10 %% weight, want 1000 ± 100", n)
	}
}

func BenchmarkRecord(b *testing.B) {
	var c Counters
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Record(300*time.Nanosecond, false)
		}
	})
}
