package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// callerGuest calls other modules through the host (wasm ABI 1.1). It
// requires "callee" and itself, for recursion.
const callerGuest = `package main

import (
	"context"
	"errors"

	"github.com/hotmod/hotmod/sdk"
)

type AB struct {
	A int64 ` + "`hotmod:\"a,id=1,required\"`" + `
	B int64 ` + "`hotmod:\"b,id=2,required\"`" + `
}

type Sum struct {
	Sum int64 ` + "`hotmod:\"sum,id=1\"`" + `
}

// initErr is what a call during package initialisation got.
var initErr error

func init() {
	_, initErr = sdk.Call(context.Background(), "callee", "add", nil)
}

var Module = sdk.New("caller", "1.0.0").
	Requires("callee", "^1").
	Requires("caller", "^1").
	Handle("noop", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{}, nil
	}).
	Handle("sum", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return sdk.Call(ctx, "callee", "add", map[string]any{"a": 1, "b": 2})
	}).
	Method(sdk.Func("typed", func(ctx context.Context, in AB) (Sum, error) {
		return sdk.CallAs[Sum](ctx, "callee", "add", in)
	})).
	Handle("call", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		target, _ := p["target"].(string)
		method, _ := p["method"].(string)
		params, _ := p["params"].(map[string]any)
		return sdk.Call(ctx, target, method, params)
	}).
	Handle("probe", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		target, _ := p["target"].(string)
		method, _ := p["method"].(string)
		_, err := sdk.Call(ctx, target, method, nil)
		var e *sdk.Error
		if !errors.As(err, &e) {
			return map[string]any{"error": "not an *sdk.Error"}, nil
		}
		return map[string]any{"code": string(e.Code), "message": e.Message,
			"is_bad_params": errors.Is(err, sdk.ErrBadParams)}, nil
	}).
	Handle("down", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		n, err := sdk.Int(p, "n")
		if err != nil || n == 0 {
			return map[string]any{"depth": int64(0)}, err
		}
		out, err := sdk.Call(ctx, "caller", "down", map[string]any{"n": n - 1})
		if err != nil {
			return nil, err
		}
		return map[string]any{"depth": out["depth"].(int64) + 1}, nil
	}).
	Handle("init_error", func(context.Context, map[string]any) (map[string]any, error) {
		e := sdk.AsError(initErr)
		if e == nil {
			return map[string]any{}, nil
		}
		return map[string]any{"code": string(e.Code), "message": e.Message}, nil
	}).
	OnInit(func(ctx context.Context, cfg map[string]any) error {
		if cfg["call"] == true {
			_, err := sdk.Call(ctx, "callee", "add", map[string]any{"a": 1, "b": 2})
			return err
		}
		return nil
	})

func main() { sdk.Main(Module) }
`

// lonerGuest calls another module without declaring any requirement.
const lonerGuest = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("loner", "1.0.0").
	Handle("call", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
		return sdk.Call(ctx, "callee", "add", nil)
	})

func main() { sdk.Main(Module) }
`

// Guests that import from the host module what it does not have.
const (
	unknownImportGuest = `package main

//go:wasmimport hotmod frobnicate
func frobnicate(x uint32) uint32

//go:wasmexport hotmod_abi
func abi() uint32 { return 1<<16 | 1 + frobnicate(0)*0 }

func main() {}
`
	badSignatureGuest = `package main

//go:wasmimport hotmod call_module
func callModule(x uint32) uint64

//go:wasmexport hotmod_abi
func abi() uint32 { return 1<<16 | 1 + uint32(callModule(0))*0 }

func main() {}
`
	otherModuleGuest = `package main

//go:wasmimport env magic
func magic() uint32

//go:wasmexport hotmod_abi
func abi() uint32 { return 1<<16 | 1 + magic()*0 }

func main() {}
`
)

// route answers calls to one target.
type route func(ctx context.Context, method string, params map[string]any) (map[string]any, error)

// testHost is what a registry gives a version: it routes a call by target,
// pushes a chain frame for the caller first (as the registry does) and
// stops chains deeper than maxDepth. It records the contexts it got.
type testHost struct {
	self     string // name@version of the caller
	maxDepth int    // 0: no limit
	routes   map[string]route

	mu   sync.Mutex
	ctxs []context.Context
}

func (h *testHost) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	h.mu.Lock()
	h.ctxs = append(h.ctxs, ctx)
	h.mu.Unlock()
	ctx, depth := chain.Push(ctx, h.self)
	if h.maxDepth > 0 && depth > h.maxDepth {
		return nil, sdk.Errorf(sdk.CodeCallDepth, "the chain %s is deeper than %d calls", chain.Path(ctx, target), h.maxDepth)
	}
	r := h.routes[target]
	if r == nil {
		return nil, sdk.Errorf(sdk.CodeUndeclared, "%s does not require %s", h.self, target)
	}
	return r(ctx, method, params)
}

func (h *testHost) contexts() []context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ctxs)
}

// to routes to a loaded version.
func to(i *wasm.Instance) route { return i.Invoke }

// goAdd is a callee in Go: {"a", "b"} → {"sum"}.
func goAdd(_ context.Context, _ string, p map[string]any) (map[string]any, error) {
	a, err := sdk.Int(p, "a")
	if err != nil {
		return nil, err
	}
	b, err := sdk.Int(p, "b")
	if err != nil {
		return nil, err
	}
	return map[string]any{"sum": a + b}, nil
}

type ctxKey struct{}

// testCtx is a context with a deadline, so that a bug fails a test rather
// than hangs it, and a value the host must see.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), ctxKey{}, "outer"), d)
	t.Cleanup(cancel)
	return ctx
}

func initWith(t testing.TB, i *wasm.Instance, h sdk.Host, cfg map[string]any) {
	t.Helper()
	if err := i.Init(sdk.WithHost(context.Background(), h), cfg); err != nil {
		t.Fatal(err)
	}
}

func TestModuleCall(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 2})
	caller := load(t, l, source(t, "caller", callerGuest))
	callee := load(t, l, source(t, "testguest", testGuest))
	h := &testHost{self: "caller@1.0.0", routes: map[string]route{"callee": to(callee)}}
	initWith(t, caller, h, nil)
	ctx := testCtx(t, time.Minute)

	if v := caller.About().ABI; v != "1.1" {
		t.Errorf("the caller speaks ABI %s, want 1.1", v)
	}
	out, err := caller.Invoke(ctx, "sum", nil)
	if err != nil || out["sum"] != int64(3) {
		t.Fatalf("sum = %v, %v", out, err)
	}
	// The host got the context of the outer call: its deadline and values.
	ctxs := h.contexts()
	if len(ctxs) != 1 {
		t.Fatalf("the host was called %d times, want 1", len(ctxs))
	}
	want, _ := ctx.Deadline()
	if got, ok := ctxs[0].Deadline(); !ok || !got.Equal(want) {
		t.Errorf("the host's context has the deadline %v (%t), want the outer call's %v", got, ok, want)
	}
	if ctxs[0].Value(ctxKey{}) != "outer" {
		t.Error("the host's context is not the outer call's")
	}
	if d := chain.Depth(ctxs[0]); d != 0 {
		t.Errorf("the host's context is %d calls deep, want 0 (the outer call came from the host)", d)
	}

	// Typed on both sides, through CallAs.
	out, err = caller.Invoke(ctx, "typed", map[string]any{"a": int64(40), "b": int64(2)})
	if err != nil || out["sum"] != int64(42) {
		t.Errorf("typed = %v, %v", out, err)
	}
	// Every value-model type crosses both ways.
	in := map[string]any{"nil": nil, "t": true, "i": int64(-7), "f": 0.5, "s": "héllo", "b": []byte{0, 1},
		"list": []any{int64(1), "two"}, "obj": map[string]any{"x": int64(1)}}
	out, err = caller.Invoke(ctx, "call", map[string]any{"target": "callee", "method": "echo", "params": in})
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("echo through the caller = %#v, %v", out, err)
	}

	// Errors keep their code and message across both boundaries.
	h.routes["go"] = func(context.Context, string, map[string]any) (map[string]any, error) {
		return nil, sdk.Errorf(sdk.CodeBadParams, "nope")
	}
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "go", "method": "x"}); !errors.Is(err, sdk.ErrBadParams) || err.Error() != "bad_params: nope" {
		t.Errorf("an error of the callee: %v", err)
	}
	out, err = caller.Invoke(ctx, "probe", map[string]any{"target": "go", "method": "x"})
	if err != nil || out["code"] != "bad_params" || out["message"] != "nope" || out["is_bad_params"] != true {
		t.Errorf("the error as the guest sees it: %v, %v", out, err)
	}
	h.routes["odd"] = func(context.Context, string, map[string]any) (map[string]any, error) {
		return map[string]any{"when": time.Now()}, nil
	}
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "odd", "method": "x"}); !errors.Is(err, sdk.ErrModule) ||
		!strings.Contains(err.Error(), "odd.x returned a result outside the value model, which cannot cross into caller@1.0.0: value.when: time.Time is not in the value model") {
		t.Errorf("a result outside the value model: %v", err)
	}
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "callee", "method": "fail"}); !errors.Is(err, sdk.ErrModule) || err.Error() != "module_error: plain failure" {
		t.Errorf("a wasm callee's error: %v", err)
	}
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "callee", "method": "nope"}); !errors.Is(err, sdk.ErrUnknownMethod) {
		t.Errorf("an unknown method of the callee: %v", err)
	}
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "stranger", "method": "x"}); !errors.Is(err, sdk.ErrUndeclared) {
		t.Errorf("a target the host refuses: %v", err)
	}
	h.routes["buggy"] = func(context.Context, string, map[string]any) (map[string]any, error) { panic("host bug") }
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "buggy", "method": "x"}); !errors.Is(err, sdk.ErrInternal) || !strings.Contains(err.Error(), "the host panicked: host bug") {
		t.Errorf("a host that panics: %v", err)
	}
	// A panic in the callee is its caller's error, not its crash.
	if _, err := caller.Invoke(ctx, "call", map[string]any{"target": "callee", "method": "boom"}); !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "testguest.boom panicked") {
		t.Errorf("a callee that panics: %v", err)
	}
	if _, discarded := caller.Stats(); discarded != 0 {
		t.Errorf("%d caller guests were discarded, want none", discarded)
	}

	// Package initialisation cannot call: there is no call to belong to.
	out, err = caller.Invoke(ctx, "init_error", nil)
	if err != nil || out["code"] != "undeclared" || !strings.Contains(out["message"].(string), "during its package initialisation") {
		t.Errorf("a call during package initialisation: %v, %v", out, err)
	}

	// OnInit may call, with Init's context.
	initWith(t, caller, h, map[string]any{"call": true})
	h.routes["callee"] = func(context.Context, string, map[string]any) (map[string]any, error) {
		return nil, sdk.Errorf(sdk.CodeNotActive, "callee is draining")
	}
	if err := caller.Init(context.Background(), map[string]any{"call": true}); !errors.Is(err, sdk.ErrNotActive) || err.Error() != "not_active: callee is draining" {
		t.Errorf("an OnInit whose call fails: %v", err)
	}
}

// Without a host, a call is undeclared, and says what to do.
func TestModuleCallNoHost(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	ctx := testCtx(t, time.Minute)
	caller := load(t, l, source(t, "caller", callerGuest))
	if err := caller.Init(ctx, nil); err != nil {
		t.Fatal(err)
	}
	_, err := caller.Invoke(ctx, "sum", nil)
	if !errors.Is(err, sdk.ErrUndeclared) || !strings.Contains(err.Error(), "module caller@1.0.0 called callee.add, but its host gave it no handle") {
		t.Errorf("a call without a host: %v", err)
	}
	loner := load(t, l, source(t, "loner", lonerGuest))
	_, err = loner.Invoke(ctx, "call", nil)
	if !errors.Is(err, sdk.ErrUndeclared) || !strings.Contains(err.Error(), "module loner@1.0.0 declared no requirements, so it cannot call callee.add: declare the modules it calls with Requires") {
		t.Errorf("a call from a module that requires nothing: %v", err)
	}
	t.Log(err)
}

// A module that calls itself recurses through the host; the host's depth
// limit ends a chain that goes too deep, and its error reaches the
// outermost caller.
func TestModuleCallRecursion(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 5})
	caller := load(t, l, source(t, "caller", callerGuest))
	h := &testHost{self: "caller@1.0.0", maxDepth: 3}
	h.routes = map[string]route{"caller": to(caller)}
	initWith(t, caller, h, nil)
	ctx := testCtx(t, time.Minute)

	out, err := caller.Invoke(ctx, "down", map[string]any{"n": int64(3)})
	if err != nil || out["depth"] != int64(3) {
		t.Fatalf("down(3) with a limit of 3 = %v, %v", out, err)
	}
	start := time.Now()
	_, err = caller.Invoke(ctx, "down", map[string]any{"n": int64(10)})
	if !errors.Is(err, sdk.ErrCallDepth) || !strings.Contains(err.Error(), "caller@1.0.0 → caller@1.0.0 → caller@1.0.0 → caller@1.0.0 → caller") {
		t.Fatalf("down(10) with a limit of 3: %v", err)
	}
	t.Logf("%v after %s", err, time.Since(start))
	// The host saw each level's chain.
	depths := map[int]bool{}
	for _, c := range h.contexts() {
		depths[chain.Depth(c)] = true
	}
	if !depths[0] || !depths[3] || depths[4] {
		t.Errorf("the host saw chains of depths %v, want 0 to 3", depths)
	}
	if _, discarded := caller.Stats(); discarded != 0 {
		t.Errorf("%d guests were discarded, want none", discarded)
	}
}

// A nested call never waits for a guest of a full pool: the guest may be
// held by its own chain.
func TestModuleCallFullPool(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 2})
	caller := load(t, l, source(t, "caller", callerGuest))
	h := &testHost{self: "caller@1.0.0"}
	h.routes = map[string]route{"caller": to(caller)}
	initWith(t, caller, h, nil)
	ctx := testCtx(t, time.Minute)

	start := time.Now()
	_, err := caller.Invoke(ctx, "down", map[string]any{"n": int64(5)})
	took := time.Since(start)
	if !errors.Is(err, sdk.ErrOverloaded) || !strings.Contains(err.Error(), "all 2 instances of caller@1.0.0 are busy") ||
		!strings.Contains(err.Error(), "(caller@1.0.0 → caller@1.0.0 → caller@1.0.0)") {
		t.Fatalf("a chain deeper than the pool: %v", err)
	}
	if took > 10*time.Second {
		t.Errorf("the chain failed after %s: it waited", took)
	}
	t.Logf("%v after %s", err, took)
	if out, err := caller.Invoke(ctx, "down", map[string]any{"n": int64(1)}); err != nil || out["depth"] != int64(1) {
		t.Errorf("a chain the pool holds: %v, %v", out, err)
	}

	// The rule on its own: with the only guest busy, a call from the host
	// waits; a nested call fails at once.
	l1, _ := newLoader(t, wasm.Config{PoolSize: 1})
	g := load(t, l1, source(t, "testguest", testGuest))
	spin, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := g.Invoke(spin, "spin", nil); done <- err }()
	time.Sleep(100 * time.Millisecond)
	nested, _ := chain.Push(testCtx(t, time.Minute), "other@1.0.0")
	start = time.Now()
	if _, err := g.Invoke(nested, "count", nil); !errors.Is(err, sdk.ErrOverloaded) || time.Since(start) > 50*time.Millisecond {
		t.Errorf("a nested call while the only guest is busy: %v after %s", err, time.Since(start))
	}
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := g.Invoke(short, "count", nil); !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "waiting for a free instance") {
		t.Errorf("a call from the host while the only guest is busy: %v", err)
	}
	<-done
}

// The outer call's deadline ends a nested call that blocks: the host
// function returns, the calling guest is discarded and the outer caller
// gets timeout.
func TestModuleCallDeadline(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	caller := load(t, l, source(t, "caller", callerGuest))
	block := func(ctx context.Context, _ string, _ map[string]any) (map[string]any, error) {
		<-ctx.Done()
		return nil, sdk.Errorf(sdk.CodeTimeout, "callee: %v", ctx.Err())
	}
	h := &testHost{self: "caller@1.0.0", routes: map[string]route{"callee": block}}
	initWith(t, caller, h, nil)

	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := caller.Invoke(ctx, "sum", nil)
	took := time.Since(start)
	if !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "caller.sum: interrupted: the call's deadline passed; the guest was interrupted and discarded") {
		t.Fatalf("a nested call past the deadline: %v", err)
	}
	if took > deadline+time.Second {
		t.Errorf("returned after %s, deadline %s", took, deadline)
	}
	if _, discarded := caller.Stats(); discarded != 1 {
		t.Errorf("%d guests discarded, want 1", discarded)
	}
	// The next call gets a fresh guest, which calls on.
	h.routes["callee"] = goAdd
	if out, err := caller.Invoke(testCtx(t, time.Minute), "sum", nil); err != nil || out["sum"] != int64(3) {
		t.Errorf("sum after a timeout = %v, %v", out, err)
	}

	// A wasm callee that loops: the deadline interrupts both guests.
	callee := load(t, l, source(t, "testguest", testGuest))
	h.routes["callee"] = to(callee)
	ctx, cancel = context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start = time.Now()
	_, err = caller.Invoke(ctx, "call", map[string]any{"target": "callee", "method": "spin"})
	if !errors.Is(err, sdk.ErrTimeout) || time.Since(start) > deadline+time.Second {
		t.Errorf("a nested call that loops past the deadline: %v after %s", err, time.Since(start))
	}
	_, callerDiscarded := caller.Stats()
	_, calleeDiscarded := callee.Stats()
	if callerDiscarded != 2 || calleeDiscarded != 1 {
		t.Errorf("discarded %d caller guests and %d callee guests, want 2 and 1", callerDiscarded, calleeDiscarded)
	}
	if out, err := caller.Invoke(testCtx(t, time.Minute), "sum", nil); err != nil || out["sum"] != int64(3) {
		t.Errorf("sum after a timeout = %v, %v", out, err)
	}
}

// ABI 1.1 guests import the host module's functions; a guest that does
// not call other modules imports nothing from it (the linker drops the
// imports), as a 1.0 guest, and loads on hosts of either minor version.
// Anything else from the host module is refused, saying what.
func TestImports(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	ctx := context.Background()
	caller := load(t, l, source(t, "caller", callerGuest))
	if got := caller.Imports(); !slices.Contains(got, "hotmod.call_module") || !slices.Contains(got, "hotmod.take_reply") {
		t.Errorf("the caller imports %v", got)
	}
	plain := load(t, l, source(t, "testguest", testGuest))
	for _, imp := range plain.Imports() {
		if strings.HasPrefix(imp, "hotmod.") {
			t.Errorf("a guest that calls no module imports %s", imp)
		}
	}
	cases := []struct{ name, src, want string }{
		{"unknown", unknownImportGuest, `it imports hotmod.frobnicate, which this host does not provide (its "hotmod" module has call_module and take_reply): it was built with a newer SDK than this host's`},
		{"signature", badSignatureGuest, "its import hotmod.call_module has the signature (i32) → (i64), not (i32, i32) → (i64)"},
		{"other module", otherModuleGuest, `it imports env.magic, which this host does not provide (hotmod guests import only WASI preview 1, "wasi_snapshot_preview1", and the host's "hotmod" module: call_module and take_reply)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Load(ctx, source(t, "imports-"+tc.name, tc.src))
			if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want incompatible: …%s…", err, tc.want)
			}
			t.Log(err)
		})
	}
}

// A guest built by Go 1.24 calls as one built by the current Go does.
func TestModuleCallGo124(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	const v = "go1.24.13"
	path := artifact(t, "caller-"+v, func() string { return plugintest.Source(t, callerGuest) }, "GOTOOLCHAIN="+v)
	caller := load(t, l, path)
	if caller.About().Go != v {
		t.Errorf("built with %s, want %s", caller.About().Go, v)
	}
	initWith(t, caller, &testHost{self: "caller@1.0.0", routes: map[string]route{"callee": goAdd}}, nil)
	if out, err := caller.Invoke(testCtx(t, time.Minute), "sum", nil); err != nil || out["sum"] != int64(3) {
		t.Errorf("sum = %v, %v", out, err)
	}
}

// Calls from many goroutines through a caller's pool into a callee's: each
// gets its own answer. The callee's pool is as large as the caller's, so
// nested calls always find a guest.
func TestModuleCallConcurrent(t *testing.T) {
	const (
		pool       = 2
		goroutines = 8
	)
	calls := 50
	if testing.Short() {
		calls = 10
	}
	l, _ := newLoader(t, wasm.Config{PoolSize: pool})
	caller := load(t, l, source(t, "caller", callerGuest))
	callee := load(t, l, source(t, "testguest", testGuest))
	initWith(t, caller, &testHost{self: "caller@1.0.0", routes: map[string]route{"callee": to(callee)}}, nil)
	ctx := testCtx(t, time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for w := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range calls {
				a, b := int64(w), int64(c)
				out, err := caller.Invoke(ctx, "typed", map[string]any{"a": a, "b": b})
				if err != nil || out["sum"] != a+b {
					errs <- fmt.Errorf("typed(%d, %d) = %v, %v", a, b, out, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, discarded := caller.Stats(); discarded != 0 {
		t.Errorf("%d caller guests discarded", discarded)
	}
}
