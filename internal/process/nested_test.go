//go:build linux

package process

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
)

// testHost is an sdk.Host, as the registry's handle is one: it routes a
// child's calls to a function and records the contexts they came with.
type testHost struct {
	route func(ctx context.Context, target, method string, params map[string]any) (map[string]any, error)

	mu   sync.Mutex
	ctxs []context.Context
}

func (h *testHost) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	h.mu.Lock()
	h.ctxs = append(h.ctxs, ctx)
	h.mu.Unlock()
	return h.route(ctx, target, method, params)
}

func (h *testHost) last() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.ctxs[len(h.ctxs)-1]
}

// initWith runs inst's Init with h in its context, as the registry does.
func initWith(t testing.TB, inst *Instance, h sdk.Host) {
	t.Helper()
	if err := inst.Init(sdk.WithHost(bg, h), nil); err != nil {
		t.Fatal(err)
	}
}

type outerKey struct{}

// goCallee is a module written as a Go function: add, fail (with the code
// params.code), slow (until its context ends, telling ended how).
func goCallee(ended chan<- error) func(ctx context.Context, target, method string, p map[string]any) (map[string]any, error) {
	return func(ctx context.Context, target, method string, p map[string]any) (map[string]any, error) {
		switch method {
		case "add":
			a, _ := sdk.Int(p, "a")
			b, _ := sdk.Int(p, "b")
			return map[string]any{"sum": a + b}, nil
		case "fail":
			code, _ := sdk.String(p, "code")
			return nil, sdk.Errorf(sdk.Code(code), "%s.fail failed as asked", target)
		case "slow":
			ms, _ := sdk.Int(p, "ms")
			if ms == 0 {
				ms = 60000
			}
			select {
			case <-ctx.Done():
				if ended != nil {
					ended <- ctx.Err()
				}
				return nil, ctx.Err()
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return map[string]any{}, nil
			}
		}
		return nil, sdk.Errorf(sdk.CodeUnknownMethod, "%s has no method %q", target, method)
	}
}

// TestNestedCall: a method calls other modules through the host: a Go
// function and another process module. The host's handle gets the call
// within the context of the call it is made for.
func TestNestedCall(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "caller"))
	callee := load(t, cfg, launch(t, "helper"))
	goFunc := goCallee(nil)
	h := &testHost{route: func(ctx context.Context, target, method string, p map[string]any) (map[string]any, error) {
		if target == "helper" {
			return callee.Invoke(ctx, method, p)
		}
		return goFunc(ctx, target, method, p)
	}}
	initWith(t, inst, h)

	ctx, cancel := context.WithTimeout(context.WithValue(bg, outerKey{}, "outer"), 10*time.Second)
	defer cancel()
	outerDeadline, _ := ctx.Deadline()
	out, err := inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "add", "params": map[string]any{"a": int64(1), "b": int64(2)}})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"sum": int64(3)}) {
		t.Fatalf("relay to a Go function = %v, %v", out, err)
	}
	got := h.last()
	if d, ok := got.Deadline(); !ok || !d.Equal(outerDeadline) {
		t.Errorf("the host's handle got a context with deadline %v (%v), want the outer call's %v", d, ok, outerDeadline)
	}
	if v := got.Value(outerKey{}); v != "outer" {
		t.Errorf("the host's handle got a context without the outer call's value: %v", v)
	}

	// To another process module, and back.
	out, err = inst.Invoke(ctx, "relay", map[string]any{"target": "helper", "method": "echo", "params": map[string]any{"b": []byte{0, 1}, "f": 2.0}})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"b": []byte{0, 1}, "f": 2.0}) {
		t.Fatalf("relay to a process module = %v, %v", out, err)
	}

	// Errors keep their codes, from the host's handle and from the callee.
	for _, code := range []sdk.Code{sdk.CodeCallDepth, sdk.CodeUndeclared, sdk.CodeOverloaded, sdk.CodeBadParams, sdk.CodeNotActive} {
		_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "fail", "params": map[string]any{"code": string(code)}})
		wantCode(t, err, code, "callee.fail failed as asked")
	}
	_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "helper", "method": "add", "params": map[string]any{"a": "x", "b": int64(1)}})
	wantCode(t, err, sdk.CodeBadParams, `"a": want integer, got string`)
	_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "helper", "method": "panic"})
	wantCode(t, err, sdk.CodePanic, "helper.panic panicked")

	// A result that cannot be sent to the module.
	h.route = func(context.Context, string, string, map[string]any) (map[string]any, error) {
		return map[string]any{"c": make(chan int)}, nil
	}
	_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "odd"})
	wantCode(t, err, sdk.CodeModule, "callee.odd returned a result that cannot be sent to helper@1.0.0", "result.c")
	// A host's handle that panics.
	h.route = func(context.Context, string, string, map[string]any) (map[string]any, error) {
		panic("the handle broke")
	}
	_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "m"})
	wantCode(t, err, sdk.CodePanic, "callee.m (called by helper@1.0.0) panicked: the handle broke")
}

// TestNestedNoHost: a module loaded without a host handle cannot call
// other modules, and is told why.
func TestNestedNoHost(t *testing.T) {
	cfg, _ := testConfig(t)
	p := map[string]any{"target": "callee", "method": "add"}
	// It declared nothing: the Go sdk knows without asking the host.
	_, err := load(t, cfg, launch(t, "helper")).Invoke(bg, "relay", p)
	wantCode(t, err, sdk.CodeUndeclared, "calling callee.add: module helper@1.0.0 declared no requirements: declare the modules it calls with Requires")
	// A child in another language asks; the host knows too.
	_, err = load(t, cfg, launchAs(t, "jsonv2", "json", "HOTMOD_TEST_NO_REQUIRES=1")).Invoke(bg, "relay", p)
	wantCode(t, err, sdk.CodeUndeclared, "module jsonkid@1.0.0 declared no requirements, so it cannot call callee.add: declare the modules it calls with Requires")
	// It declared requirements, but its host gave it no handle.
	inst := load(t, cfg, launch(t, "caller"))
	if err := inst.Init(bg, nil); err != nil {
		t.Fatal(err)
	}
	_, err = inst.Invoke(bg, "relay", p)
	wantCode(t, err, sdk.CodeUndeclared, "module helper@1.0.0 called callee.add, but its host gave it no handle", "sdk.WithHost")
}

// depthHost routes calls to "helper" back into inst, stopping chains
// deeper than limit as the registry does.
func depthHost(inst **Instance, limit int) *testHost {
	return &testHost{route: func(ctx context.Context, target, method string, p map[string]any) (map[string]any, error) {
		ctx, depth := chain.Push(ctx, "helper@1.0.0")
		if depth > limit {
			return nil, sdk.Errorf(sdk.CodeCallDepth, "the chain %s is deeper than %d", chain.Path(ctx, target), limit)
		}
		return (*inst).Invoke(ctx, method, p)
	}}
}

// TestNestedRecursion: a method that calls itself through the host, in one
// child: every level is a request in flight on the same pipes, waiting for
// the level below. Too deep a chain fails at the outermost caller with the
// host's error, at once.
func TestNestedRecursion(t *testing.T) {
	cfg, _ := testConfig(t)
	var inst *Instance
	inst = load(t, cfg, launch(t, "caller"))
	const limit = 8
	initWith(t, inst, depthHost(&inst, limit))

	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	out, err := inst.Invoke(ctx, "recurse", map[string]any{"n": int64(limit)})
	if err != nil || out["depth"] != int64(limit) {
		t.Fatalf("recurse %d = %v, %v", limit, out, err)
	}
	start := time.Now()
	_, err = inst.Invoke(ctx, "recurse", map[string]any{"n": int64(100)})
	wantCode(t, err, sdk.CodeCallDepth, "is deeper than 8", "helper@1.0.0 → helper@1.0.0")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the depth error took %v", d)
	}

	// Many chains at once, some too deep, on one child.
	pid := onlyPID(t, inst)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				n := int64((g + i) % (limit + 3))
				out, err := inst.Invoke(ctx, "recurse", map[string]any{"n": n})
				switch {
				case n > limit:
					if sdk.CodeOf(err) != sdk.CodeCallDepth {
						t.Errorf("recurse %d = %v, %v; want call_depth", n, out, err)
						return
					}
				case err != nil || out["depth"] != n:
					t.Errorf("recurse %d = %v, %v", n, out, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	if p := onlyPID(t, inst); p != pid {
		t.Errorf("the child was replaced (%d → %d)", pid, p)
	}
	if c := inst.slots[0].cur.Load(); c.inflight.Load() != 0 || len(c.nested) != 0 {
		t.Errorf("%d calls and %d nested calls still in flight", c.inflight.Load(), len(c.nested))
	}
}

// TestNestedEnds: a nested call ends with the call it is made for: when
// that call's deadline passes, when its child dies; and when the child
// gives it up (its own deadline, or a cancellation).
func TestNestedEnds(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "caller"))
	ended := make(chan error, 1)
	h := &testHost{route: goCallee(ended)}
	initWith(t, inst, h)
	pid := onlyPID(t, inst)
	slow := map[string]any{"target": "callee", "method": "slow"}
	// (Which of the child and the host sees a deadline pass first depends on
	// their timers: the nested call may end with either error.)
	waitEnded := func() {
		t.Helper()
		select {
		case err := <-ended:
			if err != context.DeadlineExceeded && err != context.Canceled {
				t.Errorf("the nested call ended with %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the nested call did not end")
		}
	}

	// The outer call's deadline.
	ctx, cancel := context.WithTimeout(bg, 200*time.Millisecond)
	start := time.Now()
	_, err := inst.Invoke(ctx, "relay", slow)
	cancel()
	wantCode(t, err, sdk.CodeTimeout, "deadline exceeded")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the call returned after %v; its deadline was 200ms", d)
	}
	waitEnded()

	// The outer call's cancellation.
	ctx, cancel = context.WithCancel(bg)
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err = inst.Invoke(ctx, "relay", slow)
	wantCode(t, err, sdk.CodeTimeout, "canceled")
	waitEnded()

	// The method's own deadline, which goes to the host with the call.
	start = time.Now()
	_, err = inst.Invoke(bg, "relay", map[string]any{"target": "callee", "method": "slow", "timeout_ms": int64(100)})
	wantCode(t, err, sdk.CodeTimeout, "deadline exceeded") // the child's timer or the host's may fire first
	waitEnded()
	if d, ok := h.last().Deadline(); !ok || d.Sub(start) > 200*time.Millisecond {
		t.Errorf("the nested call's deadline is %v after the call (%v), want about 100ms", d.Sub(start), ok)
	}

	// The method cancels the call (no deadline: the cancel message does it).
	_, err = inst.Invoke(bg, "relay", map[string]any{"target": "callee", "method": "slow", "cancel_ms": int64(100)})
	wantCode(t, err, sdk.CodeTimeout, "calling callee.slow: context canceled")
	waitEnded()

	time.Sleep(2 * cfg.Grace)
	if p := onlyPID(t, inst); p != pid {
		t.Fatalf("the child was replaced (%d → %d), though it answered every cancellation", pid, p)
	}

	// The child dies during the call.
	errc := make(chan error, 1)
	go func() {
		_, err := inst.Invoke(bg, "relay", slow)
		errc <- err
	}()
	waitFor(t, 5*time.Second, "the nested call did not start", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		return len(h.ctxs) == 5
	})
	syscall.Kill(pid, syscall.SIGKILL)
	wantCode(t, <-errc, sdk.CodePanic, "signal: killed", "during the call")
	waitEnded()
}

// TestNestedLimit: a child may have Config.MaxNestedCalls calls to other
// modules in flight; more fail at once with code overloaded.
func TestNestedLimit(t *testing.T) {
	cfg, _ := testConfig(t)
	cfg.MaxNestedCalls = 3
	inst := load(t, cfg, launch(t, "caller"))
	initWith(t, inst, &testHost{route: goCallee(nil)})
	// The first three calls last long enough for the other five to come
	// while they run.
	out, err := inst.Invoke(bg, "fanout", map[string]any{"n": int64(8), "ms": int64(1500)})
	if err != nil {
		t.Fatal(err)
	}
	n := map[any]int{}
	for _, c := range out["codes"].([]any) {
		n[c]++
	}
	if n[""] != 3 || n["overloaded"] != 5 {
		t.Errorf("codes of 8 calls at once with a limit of 3: %v", out["codes"])
	}
	// The slots are free again.
	out, err = inst.Invoke(bg, "fanout", map[string]any{"n": int64(3), "ms": int64(10)})
	if err != nil || !reflect.DeepEqual(out["codes"], []any{"", "", ""}) {
		t.Errorf("fanout after: %v, %v", out, err)
	}
}

// TestNestedVersion1: a Go module of protocol version 1 (an older sdk)
// serves as before; Call in it says why it cannot reach other modules.
func TestNestedVersion1(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launch(t, "helper-v1"))
	initWith(t, inst, &testHost{route: goCallee(nil)})
	out, err := inst.Invoke(bg, "add", map[string]any{"a": int64(1), "b": int64(2)})
	if err != nil || out["sum"] != int64(3) {
		t.Fatalf("add = %v, %v", out, err)
	}
	if c := inst.slots[0].cur.Load(); c.codec.version != 1 {
		t.Errorf("the child speaks version %d", c.codec.version)
	}
	_, err = inst.Invoke(bg, "relay", map[string]any{"target": "callee", "method": "add"})
	wantCode(t, err, sdk.CodeIncompatible, "process protocol version 1, which has no calls to other modules")
}

// TestNestedJSON: the text mode carries calls too; a call made for a
// request that is not in flight gets an error.
func TestNestedJSON(t *testing.T) {
	cfg, _ := testConfig(t)
	inst := load(t, cfg, launchAs(t, "jsonv2", "json"))
	h := &testHost{route: goCallee(nil)}
	initWith(t, inst, h)
	ctx := context.WithValue(bg, outerKey{}, "outer")
	out, err := inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "add", "params": map[string]any{"a": int64(2), "b": int64(3)}})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"sum": int64(5)}) {
		t.Fatalf("relay = %v, %v", out, err)
	}
	if h.last().Value(outerKey{}) != "outer" {
		t.Errorf("the nested call's context lacks the outer call's value")
	}
	_, err = inst.Invoke(ctx, "relay", map[string]any{"target": "callee", "method": "fail", "params": map[string]any{"code": "call_depth"}})
	wantCode(t, err, sdk.CodeCallDepth, "callee.fail failed as asked")
	out, err = inst.Invoke(ctx, "stale", map[string]any{"target": "callee", "method": "add"})
	if err != nil || out["error"] == nil {
		t.Fatalf("stale = %v, %v", out, err)
	}
	e := out["error"].(map[string]any)
	if e["code"] != "timeout" || !strings.Contains(e["message"].(string), "was made for request 999999, which is not in flight") {
		t.Errorf("a call for a request not in flight got %v", e)
	}
}
