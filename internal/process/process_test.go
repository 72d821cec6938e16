//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var bg = context.Background()

// waitFor polls cond until it holds or d passes.
func waitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// onlyPID returns the pid of the instance's one child, waiting for a
// restart to finish.
func onlyPID(t testing.TB, inst *Instance) int {
	t.Helper()
	var pids []int
	waitFor(t, 20*time.Second, "no child is up", func() bool { pids = inst.PIDs(); return len(pids) == 1 })
	return pids[0]
}

func wantCode(t testing.TB, err error, code sdk.Code, parts ...string) {
	t.Helper()
	if sdk.CodeOf(err) != code {
		t.Fatalf("error %v: want code %s", err, code)
	}
	var e *sdk.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T %v is not an *sdk.Error", err, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q: want it to say %q", err, p)
		}
	}
}

func TestCallsAndValues(t *testing.T) {
	cfg, rec := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	if m := inst.Manifest(); m.Name != "helper" || m.Version != "1.0.0" || m.Fingerprint == "" || len(m.Methods) == 0 {
		t.Errorf("manifest = %+v", m)
	}
	if len(inst.Sum()) != 64 {
		t.Errorf("sum = %q", inst.Sum())
	}
	out, err := inst.Invoke(bg, "add", map[string]any{"a": int64(1), "b": int64(2)})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"sum": int64(3)}) {
		t.Fatalf("add = %v, %v", out, err)
	}

	// Every value-model type crosses as it is: integers stay integers,
	// floats floats (2.0 too), bytes bytes.
	values := map[string]any{
		"nil": nil, "t": true, "f": false,
		"int": int64(7), "max": int64(math.MaxInt64), "min": int64(math.MinInt64),
		"two": 2.0, "tiny": 5e-324, "big": 1e300, "negzero": math.Copysign(0, -1), "inf": math.Inf(1),
		"str": "héllo, 世界 \x00\n", "bytes": []byte{0, 1, 0xff}, "empty": []byte{},
		"list":  []any{int64(1), "two", 3.5, nil, []any{}, map[string]any{}},
		"deep":  map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": int64(-1)}}}},
		"small": int8(-3), "unsigned": uint32(7), "f32": float32(1.5),
	}
	out, err = inst.Invoke(bg, "echo", values)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{}
	for k, v := range values {
		want[k] = v
	}
	want["small"], want["unsigned"], want["f32"] = int64(-3), int64(7), 1.5
	if !reflect.DeepEqual(out, want) {
		t.Errorf("echo:\n got %#v\nwant %#v", out, want)
	}

	// Large values cross too (a pipe holds 64 KiB: the rest is queued).
	big := map[string]any{"b": make([]byte, 5<<20), "s": strings.Repeat("é", 1<<20)}
	out, err = inst.Invoke(bg, "echo", big)
	if err != nil || !reflect.DeepEqual(out, big) {
		t.Errorf("echo of 7 MiB: %v", err)
	}
	_, err = inst.Invoke(bg, "echo", map[string]any{"b": make([]byte, 17<<20)})
	wantCode(t, err, sdk.CodeBadParams, "over the process protocol's frame limit")

	// Outside the value model: bad_params, and the child is not touched.
	pid := onlyPID(t, inst)
	_, err = inst.Invoke(bg, "echo", map[string]any{"when": time.Now()})
	wantCode(t, err, sdk.CodeBadParams, "params.when: time.Time is not in the value model")
	_, err = inst.Invoke(bg, "echo", map[string]any{"n": uint64(math.MaxUint64)})
	wantCode(t, err, sdk.CodeBadParams, "params.n")
	_, err = inst.Invoke(bg, "nope", nil)
	wantCode(t, err, sdk.CodeUnknownMethod, `module helper has no method "nope"`)
	_, err = inst.Invoke(bg, "add", map[string]any{"a": "1", "b": int64(2)})
	wantCode(t, err, sdk.CodeBadParams, `"a": want integer, got string`)
	_, err = inst.Invoke(bg, "panic", nil)
	wantCode(t, err, sdk.CodePanic, "helper.panic panicked: the handler panicked")
	_, err = inst.Invoke(bg, "bad\xffname", nil)
	wantCode(t, err, sdk.CodeUnknownMethod)
	if p := onlyPID(t, inst); p != pid {
		t.Errorf("the child was replaced (%d → %d) by errors that are the caller's or the method's", pid, p)
	}

	// The deadline travels with the call.
	ctx, cancel := context.WithTimeout(bg, 5*time.Second)
	defer cancel()
	out, err = inst.Invoke(ctx, "deadline", nil)
	if err != nil || out["has"] != true || out["left_ms"].(int64) < 3000 || out["left_ms"].(int64) > 5000 {
		t.Errorf("deadline = %v, %v; want about 5s left", out, err)
	}
	if out, err := inst.Invoke(bg, "deadline", nil); err != nil || out["has"] != false {
		t.Errorf("deadline without one = %v, %v", out, err)
	}

	// What the module prints goes to the log, with its name.
	if _, err := inst.Invoke(bg, "print", map[string]any{"text": "hi there"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the module's print is not in the log", func() bool {
		return rec.find("process module stderr", "module=helper", "version=1.0.0", "line=printed by the module: hi there") != ""
	})
}

func TestInitCheckClose(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	config := map[string]any{"greeting": "hi", "n": int64(3), "ratio": 1.0, "close_error": true}
	if err := inst.Init(bg, config); err != nil {
		t.Fatal(err)
	}
	if err := inst.Check(bg); err != nil {
		t.Fatal(err)
	}
	out, err := inst.Invoke(bg, "config", nil)
	if err != nil || !reflect.DeepEqual(out["config"], config) {
		t.Fatalf("config = %v, %v; want %v", out, err, config)
	}

	// A restarted child gets Init again before it serves.
	pid := onlyPID(t, inst)
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the child was not replaced", func() bool {
		p := inst.PIDs()
		return len(p) == 1 && p[0] != pid
	})
	out, err = inst.Invoke(bg, "config", nil)
	if err != nil || !reflect.DeepEqual(out["config"], config) {
		t.Fatalf("config after a restart = %v, %v; want %v", out, err, config)
	}

	err = inst.Init(bg, map[string]any{"fail": true})
	wantCode(t, err, sdk.CodeModule, "init refused the configuration")
	if err := inst.Init(bg, map[string]any{"bad_check": true, "close_error": true}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, inst.Check(bg), sdk.CodeModule, "self-check failed")

	// Close returns the OnClose hook's error.
	if err := inst.Close(); err == nil || !strings.Contains(err.Error(), "close failed") {
		t.Errorf("Close = %v, want the hook's error", err)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("a second Close = %v", err)
	}
	_, err = inst.Invoke(bg, "add", map[string]any{"a": int64(1), "b": int64(1)})
	wantCode(t, err, sdk.CodeNotActive, "closed")
}

// TestCloseDuringCall: Close does not wait for calls (the registry drains
// them first); a call still running fails with not_active, promptly.
func TestCloseDuringCall(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	errc := make(chan error, 1)
	go func() {
		_, err := inst.Invoke(bg, "spin", nil)
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the call did not start", func() bool { return inst.slots[0].cur.Load().inflight.Load() == 1 })
	start := time.Now()
	inst.Close()
	if d := time.Since(start); d > cfg.Grace+2*time.Second {
		t.Errorf("Close took %v", d)
	}
	wantCode(t, <-errc, sdk.CodeNotActive, "helper@1.0.0 was closed during the call")
	if alive(pid) {
		t.Errorf("pid %d is alive after Close", pid)
	}
}

// TestKillMidCall: a child killed during a call fails that call with code
// panic; the next call waits for the restart and succeeds.
func TestKillMidCall(t *testing.T) {
	cfg, rec := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	errc := make(chan error, 1)
	go func() {
		_, err := inst.Invoke(bg, "sleep", map[string]any{"ms": int64(60000)})
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the call did not start", func() bool { return inst.slots[0].cur.Load().inflight.Load() == 1 })
	start := time.Now()
	syscall.Kill(pid, syscall.SIGKILL)
	err := <-errc
	wantCode(t, err, sdk.CodePanic, "helper@1.0.0", fmt.Sprintf("pid %d", pid), "signal: killed", "during the call")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the call failed %v after the kill", d)
	}
	out, err := inst.Invoke(bg, "add", map[string]any{"a": int64(20), "b": int64(22)})
	if err != nil || out["sum"] != int64(42) {
		t.Fatalf("the call after the crash: %v, %v", out, err)
	}
	if p := onlyPID(t, inst); p == pid {
		t.Errorf("still pid %d", p)
	}
	if rec.find("process module died; restarting it", "signal: killed") == "" {
		t.Errorf("the restart is not logged")
	}
}

// TestCrash: a panic in a goroutine of the module kills the child; the
// call says so, with the panic from stderr.
func TestCrash(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	_, err := inst.Invoke(bg, "crash", nil)
	wantCode(t, err, sdk.CodePanic, "exited: exit status 2", "panic: a goroutine of the module panicked")
	if _, err := inst.Invoke(bg, "pid", nil); err != nil {
		t.Fatal(err)
	}
}

// TestHang: a call to a child that ignores its cancellation times out at
// its deadline; a grace period later the child is killed and replaced.
func TestHang(t *testing.T) {
	cfg, rec := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := inst.Invoke(ctx, "spin", nil)
	took := time.Since(start)
	wantCode(t, err, sdk.CodeTimeout, "helper@1.0.0.spin", "deadline exceeded", "cancelled")
	if took < 200*time.Millisecond || took > 200*time.Millisecond+150*time.Millisecond {
		t.Errorf("the call returned after %v; its deadline was 200ms", took)
	}
	waitFor(t, 20*time.Second, "the hung child was not replaced", func() bool {
		p := inst.PIDs()
		return len(p) == 1 && p[0] != pid
	})
	if d := time.Since(start); d < cfg.Grace {
		t.Errorf("the child was replaced %v after the call began, before the grace period (%v) ended", d, cfg.Grace)
	}
	if rec.find("did not answer call", "(spin) within 300ms of its cancellation") == "" {
		t.Errorf("the kill's reason is not logged")
	}
	if _, err := inst.Invoke(bg, "pid", nil); err != nil {
		t.Fatal(err)
	}
}

// TestCancelHonoured: a call whose method returns when cancelled times out
// at its deadline, and the child stays.
func TestCancelHonoured(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	ctx, cancel := context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := inst.Invoke(ctx, "sleep", map[string]any{"ms": int64(60000)})
	wantCode(t, err, sdk.CodeTimeout, "context canceled")
	time.Sleep(2 * cfg.Grace)
	if p := onlyPID(t, inst); p != pid {
		t.Errorf("the child was replaced (%d → %d), though it answered the cancellation", pid, p)
	}
	if c := inst.slots[0].cur.Load(); c.inflight.Load() != 0 {
		t.Errorf("%d calls still in flight", c.inflight.Load())
	}
}

// TestGarbage: a child that writes what is not the protocol is replaced;
// the call in flight fails with a protocol error, the host is unharmed.
func TestGarbage(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	_, err := inst.Invoke(bg, "garbage", nil)
	wantCode(t, err, sdk.CodePanic, "was killed: protocol error", "not a CBOR map")
	out, err := inst.Invoke(bg, "pid", nil)
	if err != nil || out["pid"] == int64(pid) {
		t.Fatalf("after garbage: %v, %v", out, err)
	}
	_, err = inst.Invoke(bg, "stdout", nil)
	wantCode(t, err, sdk.CodePanic, "protocol error", `"hell"`, "does the module print to stdout?")
	if _, err := inst.Invoke(bg, "pid", nil); err != nil {
		t.Fatal(err)
	}
}

// TestHeartbeat: an idle child that stops answering (SIGSTOP) is killed
// and replaced by the heartbeat.
func TestHeartbeat(t *testing.T) {
	cfg, rec := testConfig(t)
	cfg.Heartbeat = 100 * time.Millisecond
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	time.Sleep(300 * time.Millisecond) // a few heartbeats answered
	if p := onlyPID(t, inst); p != pid {
		t.Fatalf("a healthy child was replaced")
	}
	syscall.Kill(pid, syscall.SIGSTOP)
	waitFor(t, 20*time.Second, "the stopped child was not replaced", func() bool {
		p := inst.PIDs()
		return len(p) == 1 && p[0] != pid
	})
	if rec.find("did not answer a heartbeat within 100ms") == "" {
		t.Errorf("the heartbeat's kill is not logged")
	}
	if _, err := inst.Invoke(bg, "pid", nil); err != nil {
		t.Fatal(err)
	}
}

// TestRepeatedCrashes: a version whose children keep dying fails, once,
// with the reason, and its calls then fail with not_active.
func TestRepeatedCrashes(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.MaxCrashes = 3
	var mu sync.Mutex
	var failed []error
	var failedInst *Instance
	cfg.OnFailed = func(inst *Instance, err error) {
		mu.Lock()
		defer mu.Unlock()
		failed, failedInst = append(failed, err), inst
	}
	inst := load(t, cfg, launch(t, "helper", "HOTMOD_TEST_EXIT_AFTER=300ms"))
	waitFor(t, 30*time.Second, "OnFailed was not called", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(failed) > 0
	})
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	if len(failed) != 1 || failedInst != inst {
		t.Errorf("OnFailed called %d times (instance %p, want %p)", len(failed), failedInst, inst)
	}
	err := failed[0]
	mu.Unlock()
	wantCode(t, err, sdk.CodePanic, "helper@1.0.0: its process failed 3 times within 1m0s", "exit status 4", "helper: exiting on purpose")
	if inst.Failed() == nil {
		t.Errorf("Failed() = nil")
	}
	_, err = inst.Invoke(bg, "pid", nil)
	wantCode(t, err, sdk.CodeNotActive, "failed 3 times")
	if p := inst.PIDs(); len(p) != 0 {
		t.Errorf("children still running: %v", p)
	}
}

// TestWaitForRestart: a call made while no child is up waits for the
// restart, within its context.
func TestWaitForRestart(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.Backoff = 300 * time.Millisecond
	inst := load(t, cfg, launch(t, "helper"))
	pid := onlyPID(t, inst)
	syscall.Kill(pid, syscall.SIGKILL)
	waitFor(t, 5*time.Second, "the death was not noticed", func() bool { return len(inst.PIDs()) == 0 })
	ctx, cancel := context.WithTimeout(bg, 50*time.Millisecond)
	defer cancel()
	_, err := inst.Invoke(ctx, "pid", nil)
	wantCode(t, err, sdk.CodeTimeout, "while waiting for its process to restart")
	out, err := inst.Invoke(bg, "pid", nil)
	if err != nil || out["pid"] == int64(pid) {
		t.Fatalf("after the restart: %v, %v", out, err)
	}
}

func TestPool(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.PoolSize = 3
	inst := load(t, cfg, launch(t, "helper"))
	pids := inst.PIDs()
	if len(pids) != 3 || pids[0] == pids[1] || pids[1] == pids[2] || pids[0] == pids[2] {
		t.Fatalf("pids = %v, want 3 children", pids)
	}
	// Slow calls spread over the children.
	seen := map[int64]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 12; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := inst.Invoke(bg, "sleep", map[string]any{"ms": int64(100)})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[out["pid"].(int64)]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 3 {
		t.Errorf("calls went to %v; want all 3 children", seen)
	}
	// One child dies: the others serve on, and it is replaced.
	syscall.Kill(pids[1], syscall.SIGKILL)
	waitFor(t, 5*time.Second, "the death was not noticed", func() bool {
		for _, p := range inst.PIDs() {
			if p == pids[1] {
				return false
			}
		}
		return true
	})
	for i := 0; i < 20; i++ {
		if _, err := inst.Invoke(bg, "pid", nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 20*time.Second, "the pool was not refilled", func() bool { return len(inst.PIDs()) == 3 })
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pids, inst.PIDs()...) {
		if alive(p) {
			t.Errorf("pid %d is alive after Close", p)
		}
	}
}

// TestHammer makes many calls at once on one child (ids multiplexed on one
// pipe), some of them timing out, under -race.
func TestHammer(t *testing.T) {
	for _, pool := range []int{1, 2} {
		t.Run(fmt.Sprintf("pool=%d", pool), func(t *testing.T) {
			cfg, _ := testConfig(t)
			cfg.PoolSize = pool
			cfg.Heartbeat = 20 * time.Millisecond
			inst := load(t, cfg, launch(t, "helper"))
			pids := inst.PIDs()
			var wg sync.WaitGroup
			for g := 0; g < 32; g++ {
				wg.Add(1)
				go func(g int) {
					defer wg.Done()
					for i := 0; i < 150; i++ {
						switch i % 10 {
						case 0: // abandoned calls, answered late
							ctx, cancel := context.WithTimeout(bg, time.Millisecond)
							_, err := inst.Invoke(ctx, "sleep", map[string]any{"ms": int64(5)})
							cancel()
							if sdk.CodeOf(err) != sdk.CodeTimeout && err != nil {
								t.Errorf("sleep: %v", err)
								return
							}
						case 1:
							tag := fmt.Sprintf("%d/%d", g, i)
							out, err := inst.Invoke(bg, "echo", map[string]any{"tag": tag, "list": []any{int64(g), int64(i)}})
							if err != nil || out["tag"] != tag || !reflect.DeepEqual(out["list"], []any{int64(g), int64(i)}) {
								t.Errorf("echo %s = %v, %v", tag, out, err)
								return
							}
						default:
							a, b := int64(g*1000), int64(i)
							ctx, cancel := context.WithTimeout(bg, 20*time.Second)
							out, err := inst.Invoke(ctx, "add", map[string]any{"a": a, "b": b})
							cancel()
							if err != nil || out["sum"] != a+b {
								t.Errorf("add(%d, %d) = %v, %v", a, b, out, err)
								return
							}
						}
					}
				}(g)
			}
			wg.Wait()
			if got := inst.PIDs(); !reflect.DeepEqual(got, pids) {
				t.Errorf("children changed from %v to %v", pids, got)
			}
		})
	}
}

// TestChildDiesWithHost: a host that is killed takes its children with it
// (Pdeathsig on Linux).
func TestChildDiesWithHost(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	host := execCommand(exe, "-test.run=^$")
	host.Env = append(os.Environ(), testChildEnv+"=host", "HOTMOD_TEST_LAUNCH="+launch(t, "helper"))
	out, err := host.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := host.Start(); err != nil {
		t.Fatal(err)
	}
	var pid int
	if _, err := fmt.Fscan(out, &pid); err != nil {
		host.Process.Kill()
		t.Fatalf("reading the child's pid from the host: %v", err)
	}
	if !alive(pid) {
		t.Fatalf("the host's child %d is not running", pid)
	}
	host.Process.Kill()
	host.Wait()
	waitFor(t, 10*time.Second, fmt.Sprintf("the child %d outlived its host", pid), func() bool { return !alive(pid) })
}

// TestOutputFlood: a child that prints 20 MB to stderr leaves about
// logcap.Burst bytes in the log, and a record of what was dropped.
func TestOutputFlood(t *testing.T) {
	cfg, rec := testConfig(t)
	inst := load(t, cfg, launch(t, "helper"))
	const flood = 20 << 20
	if _, err := inst.Invoke(bg, "flood", map[string]any{"bytes": int64(flood)}); err != nil {
		t.Fatal(err)
	}
	// The pipe may still hold the end of the flood: a line printed after it
	// comes through once the budget has refilled, after the drop report.
	waitFor(t, 20*time.Second, "no record of the dropped output", func() bool {
		_, _ = inst.Invoke(bg, "print", map[string]any{"text": "after"})
		return rec.find("printed by the module: after") != ""
	})
	logged, dropped := 0, 0
	rec.mu.Lock()
	for _, l := range rec.lines {
		if strings.HasPrefix(l, "process module stderr") {
			logged += len(l)
		}
		if i := strings.Index(l, "dropped_bytes="); i >= 0 {
			n, _ := strconv.Atoi(strings.Fields(l[i+len("dropped_bytes="):])[0])
			dropped += n
		}
	}
	rec.mu.Unlock()
	if logged > 2<<20 || dropped < flood-3<<20 {
		t.Errorf("a child printing %d MiB: %d bytes logged, %d reported dropped", flood>>20, logged, dropped)
	}
	t.Logf("logged %d bytes, dropped %d", logged, dropped)
}
