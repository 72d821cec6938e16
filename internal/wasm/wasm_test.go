package wasm_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// The examples answer over wasm what they answer natively: these are the
// cases examples/pricing's own test checks against Module.Invoke and
// Module.InvokeCBOR in process.
func TestExamples(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	ctx := context.Background()

	greeter := load(t, l, example(t, "greeter"))
	out, err := greeter.Invoke(ctx, "hello", map[string]any{"name": "Ada"})
	if err != nil || !reflect.DeepEqual(out, map[string]any{"message": "hello, Ada"}) {
		t.Errorf("greeter.hello = %v, %v", out, err)
	}
	if _, err := greeter.Invoke(ctx, "hello", nil); !errors.Is(err, sdk.ErrBadParams) || err.Error() != `bad_params: "name" is required (a string)` {
		t.Errorf("greeter.hello without a name: %v", err)
	}
	if _, err := greeter.Invoke(ctx, "bye", nil); !errors.Is(err, sdk.ErrUnknownMethod) || !strings.Contains(err.Error(), "(it has: hello)") {
		t.Errorf("greeter.bye: %v", err)
	}

	pricing := load(t, l, example(t, "pricing"))
	checkPricing(t, pricing)

	man := pricing.Manifest()
	if man.Name != "pricing" || man.Version != "1.1.0" || man.SDK != sdk.Version || len(man.Needs) != 0 {
		t.Errorf("manifest: %+v", man)
	}
	want := `{sku!: string, qty!: int64, coupon: string = "NONE" (alias code, voucher)}`
	if man.Methods[1].Name != "quote" || man.Methods[1].Params.String() != want {
		t.Errorf("quote params: %s, want %s", man.Methods[1].Params, want)
	}
	if err := pricing.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
}

// checkPricing runs examples/pricing's cases against a loaded pricing.
func checkPricing(t *testing.T, pricing *wasm.Instance) {
	t.Helper()
	cases := []struct {
		name   string
		params map[string]any
		want   map[string]any
		err    string
	}{
		{"coupon", map[string]any{"sku": "tea", "qty": int64(3), "coupon": "TENOFF"},
			map[string]any{"sku": "tea", "qty": int64(3), "unit_cents": int64(450), "subtotal_cents": int64(1350),
				"discount_cents": int64(135), "total_cents": int64(1215)}, ""},
		{"no coupon: the default", map[string]any{"sku": "cake", "qty": int64(1)},
			map[string]any{"sku": "cake", "qty": int64(1), "unit_cents": int64(520), "subtotal_cents": int64(520),
				"discount_cents": int64(0), "total_cents": int64(520)}, ""},
		{"the old name of coupon", map[string]any{"sku": "tea", "qty": 2.0, "code": "half"},
			map[string]any{"sku": "tea", "qty": int64(2), "unit_cents": int64(450), "subtotal_cents": int64(900),
				"discount_cents": int64(450), "total_cents": int64(450)}, ""},
		{"unknown sku", map[string]any{"sku": "beer", "qty": int64(1)}, nil, `bad_params: unknown sku "beer" (known: cake, coffee, tea)`},
		{"qty range", map[string]any{"sku": "tea", "qty": int64(0)}, nil, "bad_params: qty must be between 1 and 10000, got 0"},
		{"bad coupon", map[string]any{"sku": "tea", "qty": int64(1), "coupon": "FREE"}, nil, `bad_params: coupon "FREE" is not valid`},
		{"missing sku", map[string]any{"qty": int64(1)}, nil, `bad_params: "sku" is required (a string)`},
		{"mistyped qty", map[string]any{"sku": "tea", "qty": "1"}, nil, `bad_params: "qty": want integer, got string`},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := pricing.Invoke(ctx, "quote", tc.params)
			data, _ := cbor.Marshal(tc.params)
			raw, rawErr := pricing.InvokeCBOR(ctx, "quote", data)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || rawErr == nil || rawErr.Error() != tc.err {
					t.Fatalf("got %v and %v, want %s", err, rawErr, tc.err)
				}
				if !errors.Is(err, sdk.ErrBadParams) || !errors.Is(rawErr, sdk.ErrBadParams) {
					t.Errorf("%v is not bad_params", err)
				}
				return
			}
			if err != nil || rawErr != nil {
				t.Fatal(err, rawErr)
			}
			fromRaw, err := cbor.UnmarshalMap(raw)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(fromRaw, tc.want) {
				t.Errorf("got %v and %v, want %v", got, fromRaw, tc.want)
			}
		})
	}
	out, err := pricing.Invoke(ctx, "catalog", nil)
	items, _ := out["items"].([]any)
	if err != nil || len(items) != 3 || !reflect.DeepEqual(items[2], map[string]any{"sku": "tea", "unit_cents": int64(450)}) {
		t.Errorf("catalog = %v, %v", out, err)
	}
}

// The point of the transport: modules built by older Go toolchains run in
// this host, answering exactly what the current toolchain's build answers.
func TestCrossVersion(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	for _, v := range []string{"go1.24.13", "go1.25.5"} {
		t.Run(v, func(t *testing.T) {
			path := example(t, "pricing", "GOTOOLCHAIN="+v)
			i := load(t, l, path)
			if got := i.About().Go; got != v {
				t.Errorf("built with %s, want %s", got, v)
			}
			checkPricing(t, i)
		})
	}
}

// Every value-model type crosses both ways unchanged; integers stay
// integers and floats floats.
func TestValueModel(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	g := load(t, l, source(t, "testguest", testGuest))
	ctx := context.Background()
	in := map[string]any{
		"nil": nil, "t": true, "i": int64(-7), "big": int64(1) << 62, "f": 2.0, "half": 0.5,
		"s": "héllo", "b": []byte{0, 1, 2}, "list": []any{int64(1), "two", 3.5, []any{}},
		"obj": map[string]any{"deep": map[string]any{"x": int64(1)}},
	}
	out, err := g.Invoke(ctx, "echo", in)
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Errorf("echo:\n got %#v, %v\nwant %#v", out, err, in)
	}
	// Go's other integer kinds go in as int64.
	out, err = g.Invoke(ctx, "add", map[string]any{"a": 1, "b": uint8(2)})
	if err != nil || out["sum"] != int64(3) {
		t.Errorf("add = %v, %v", out, err)
	}
	_, err = g.Invoke(ctx, "echo", map[string]any{"when": time.Now()})
	if !errors.Is(err, sdk.ErrBadParams) || !strings.Contains(err.Error(), "time.Time is not in the value model") {
		t.Errorf("a time.Time param: %v", err)
	}
	// Raw CBOR that is not a map is the guest's bad_params.
	if _, err := g.InvokeCBOR(ctx, "add", []byte{0x01}); !errors.Is(err, sdk.ErrBadParams) {
		t.Errorf("params that are not a map: %v", err)
	}
	// An error without a code of its own is module_error, with its text.
	if _, err := g.Invoke(ctx, "fail", nil); !errors.Is(err, sdk.ErrModule) || err.Error() != "module_error: plain failure" {
		t.Errorf("fail: %v", err)
	}
	// A large request grows the guest's request buffer.
	big := strings.Repeat("x", 100<<10)
	out, err = g.Invoke(ctx, "echo", map[string]any{"s": big})
	if err != nil || out["s"] != big {
		t.Errorf("echo of 100 KiB: %v", err)
	}
}

func TestPanic(t *testing.T) {
	l, lg := newLoader(t, wasm.Config{PoolSize: 1})
	g := load(t, l, source(t, "testguest", testGuest))
	ctx := context.Background()
	for n := int64(1); n <= 2; n++ {
		if out, err := g.Invoke(ctx, "count", nil); err != nil || out["n"] != n {
			t.Fatalf("count = %v, %v", out, err)
		}
	}
	_, err := g.Invoke(ctx, "boom", nil)
	if !errors.Is(err, sdk.ErrPanic) || err.Error() != "panic: testguest.boom panicked: boom" {
		t.Fatalf("boom: %v", err)
	}
	// The next call is served by a fresh guest: the count starts again.
	if out, err := g.Invoke(ctx, "count", nil); err != nil || out["n"] != int64(1) {
		t.Errorf("count after a panic = %v, %v; want 1 from a fresh guest", out, err)
	}
	if started, discarded := g.Stats(); started != 2 || discarded != 1 {
		t.Errorf("started %d guests and discarded %d, want 2 and 1", started, discarded)
	}
	if s := lg.String(); !strings.Contains(s, "panic: testguest.boom: boom") || !strings.Contains(s, "main.go:") {
		t.Errorf("the panic's stack is not in the log:\n%s", s)
	}
}

func TestTimeout(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	g := load(t, l, source(t, "testguest", testGuest))
	const deadline = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	_, err := g.Invoke(ctx, "spin", nil)
	took := time.Since(start)
	if !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "deadline passed") {
		t.Fatalf("spin: %v", err)
	}
	if took > deadline+200*time.Millisecond {
		t.Errorf("the endless loop was stopped after %s, deadline %s", took, deadline)
	}
	t.Logf("an endless loop with a %s deadline returned after %s", deadline, took)
	if out, err := g.Invoke(context.Background(), "count", nil); err != nil || out["n"] != int64(1) {
		t.Errorf("count after a timeout = %v, %v; want 1 from a fresh guest", out, err)
	}
	// A context already done never reaches a guest.
	if _, err := g.Invoke(ctx, "count", nil); !errors.Is(err, sdk.ErrTimeout) {
		t.Errorf("with an expired context: %v", err)
	}
	if started, discarded := g.Stats(); started != 2 || discarded != 1 {
		t.Errorf("started %d guests and discarded %d, want 2 and 1", started, discarded)
	}
}

// With every guest busy, a call waits for one within its deadline.
func TestPoolWait(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	g := load(t, l, source(t, "testguest", testGuest))
	long, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := g.Invoke(long, "spin", nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	short, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := g.Invoke(short, "count", nil); !errors.Is(err, sdk.ErrTimeout) || !strings.Contains(err.Error(), "waiting for a free instance") {
		t.Errorf("a call while the only guest spins: %v", err)
	}
	if err := <-done; !errors.Is(err, sdk.ErrTimeout) {
		t.Errorf("spin: %v", err)
	}
	if _, err := g.Invoke(context.Background(), "count", nil); err != nil {
		t.Error(err)
	}
}

func TestMemoryLimit(t *testing.T) {
	const pages = 512 // 32 MiB
	l, _ := newLoader(t, wasm.Config{PoolSize: 1, MemoryLimitPages: pages})
	g := load(t, l, source(t, "testguest", testGuest))
	_, err := g.Invoke(context.Background(), "hog", nil)
	if !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "ran out of memory at the limit of 512 pages (32 MiB)") ||
		!strings.Contains(err.Error(), "MemoryLimitPages") {
		t.Fatalf("hog: %v", err)
	}
	t.Log(err)
	if out, err := g.Invoke(context.Background(), "count", nil); err != nil || out["n"] != int64(1) {
		t.Errorf("count after running out of memory = %v, %v", out, err)
	}
}

func TestExit(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 1})
	g := load(t, l, source(t, "testguest", testGuest))
	_, err := g.Invoke(context.Background(), "exit", nil)
	if !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "testguest.exit crashed: the guest exited with code 3") {
		t.Fatalf("exit: %v", err)
	}
	if _, err := g.Invoke(context.Background(), "count", nil); err != nil {
		t.Error(err)
	}
}

// Without grants a guest sees no files and no environment; it sees the
// host's time of day unless the host denies it.
func TestSandbox(t *testing.T) {
	t.Setenv("HOME", "/secret/home")
	l, _ := newLoader(t, wasm.Config{Grants: []string{"fs=" + t.TempDir(), "env=HOME", "-clock"}})
	g := load(t, l, source(t, "testguest", testGuest)) // it asks for nothing: granted nothing
	out, err := g.Invoke(context.Background(), "files", nil)
	if err != nil || out["env"] != "" || out["error"] == "<nil>" {
		t.Errorf("files = %v, %v; want an error reading / and no HOME", out, err)
	}
	// Denied, the time of day is not the host's; durations and sleeps are real.
	start := time.Now()
	out, err = g.Invoke(context.Background(), "clock", nil)
	took := time.Since(start)
	if err != nil || out["year"] != int64(2022) || out["slept_ns"].(int64) < int64(30*time.Millisecond) || took < 30*time.Millisecond {
		t.Errorf("clock = %v, %v after %s; want the year 2022 and a real sleep of 30ms", out, err, took)
	}
	// A sleep longer than the deadline is interrupted at the deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := g.Invoke(ctx, "clock", nil); !errors.Is(err, sdk.ErrTimeout) || time.Since(start) > 25*time.Millisecond+50*time.Millisecond {
		t.Errorf("a 30ms sleep with a 10ms deadline: %v after %s", err, time.Since(start))
	}
	// By default, and where a module's grant beats a general denial, the
	// time of day is the host's.
	for _, grants := range [][]string{nil, {"-clock", "testguest:clock"}} {
		l, _ := newLoader(t, wasm.Config{Grants: grants})
		out, err := load(t, l, source(t, "testguest", testGuest)).Invoke(context.Background(), "clock", nil)
		if err != nil || out["year"] != int64(time.Now().Year()) {
			t.Errorf("grants %q: clock = %v, %v; want the year %d", grants, out, err, time.Now().Year())
		}
	}
}

func TestCapabilities(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hi from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	reader := source(t, "fsguest", fsGuest)
	ctx := context.Background()

	l, _ := newLoader(t, wasm.Config{Grants: []string{"clock", "other:fs=" + dir}})
	_, err := l.Load(ctx, reader)
	if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), "module reader asks for fs; this host does not grant it") ||
		!strings.Contains(err.Error(), `"reader:fs=DIR"`) {
		t.Fatalf("loading a module that asks for fs without a grant: %v", err)
	}
	t.Log(err)

	for _, grant := range []string{"fs-ro=" + dir, "reader:fs=" + dir} {
		l, _ := newLoader(t, wasm.Config{Grants: []string{grant}})
		r := load(t, l, reader)
		out, err := r.Invoke(ctx, "read", map[string]any{"name": "hello.txt"})
		if err != nil || out["text"] != "hi from the host" {
			t.Errorf("with %q: read = %v, %v", grant, out, err)
		}
		if r.Manifest().Needs[0] != "fs" {
			t.Errorf("needs: %v", r.Manifest().Needs)
		}
	}

	clock := source(t, "clockguest", clockGuest)
	if _, err := l.Load(ctx, clock); err == nil || !strings.Contains(err.Error(), "asks for env; this host does not grant it") {
		t.Errorf("clock and env, clock granted: %v", err)
	}
	denied, _ := newLoader(t, wasm.Config{Grants: []string{"clock:-clock", "env=HOME"}})
	if _, err := denied.Load(ctx, clock); err == nil || !strings.Contains(err.Error(), `asks for clock; this host denies it (the grant "clock:-clock")`) {
		t.Errorf("a module that asks for a denied clock: %v", err)
	}
	l2, _ := newLoader(t, wasm.Config{Grants: []string{"env=HOME"}}) // the clock is given by default
	c := load(t, l2, clock)
	out, err := c.Invoke(ctx, "now", nil)
	if now := time.Now().Unix(); err != nil || out["unix"].(int64) < now-5 || out["unix"].(int64) > now+5 {
		t.Errorf("now = %v, %v; want about %d", out, err, now)
	}
}

func TestGrantErrors(t *testing.T) {
	if err := wasm.CheckGrants([]string{"clock", "-clock", "pricing:-clock", "pricing:fs-ro=" + t.TempDir(), "env=HOME,LANG"}); err != nil {
		t.Errorf("good grants: %v", err)
	}
	for _, g := range []string{"net", "gpu", "fs", "fs=/no/such/dir", "env", "clock=1", "-clock=1", "-fs", "Bad:clock"} {
		_, err := wasm.NewLoader(context.Background(), wasm.Config{CacheDir: cacheDir, Grants: []string{g}})
		if err == nil {
			t.Errorf("grant %q accepted", g)
			continue
		}
		t.Logf("%q: %v", g, err)
	}
}

func TestRefused(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	ctx := context.Background()
	greeter, err := os.ReadFile(example(t, "greeter"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	command := filepath.Join(dir, "command.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", command, ".") // -trimpath: the same bytes every run, so its compiled code is cached
	cmd.Dir = plugintest.Example(t, "greeter")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	precompile(t, command, wasm.TierInterruptible)
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.wasm"), "no such file"},
		{"empty", file("empty.wasm", nil), "is not a WebAssembly module: the file is empty"},
		{"text", file("text.wasm", []byte("#!/bin/sh\necho hi\n")), `does not start with the wasm magic number`},
		{"header only", file("header.wasm", greeter[:6]), "the file is truncated (6 bytes)"},
		{"truncated", file("half.wasm", greeter[:len(greeter)/2]), "is not a valid WebAssembly module (the file is truncated)"},
		{"garbage", file("garbage.wasm", append([]byte("\x00asm\x01\x00\x00\x00"), []byte("not sections at all")...)), "is not a valid WebAssembly module"},
		{"command", command, "built as a command"},
		{"future ABI", source(t, "future", futureGuest), "speaks hotmod's wasm ABI 2.3; this host speaks 1.x"},
		{"init panics", source(t, "initpanic", initPanicGuest), "its initialisation failed (wasm error: unreachable); the guest said: panic: cannot start"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := l.Load(ctx, tc.path)
			if !errors.Is(err, sdk.ErrIncompatible) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want incompatible: …%s…", err, tc.want)
			}
			t.Log(err)
		})
	}
	// The loader is unharmed.
	i := load(t, l, example(t, "greeter"))
	if _, err := i.Invoke(ctx, "hello", map[string]any{"name": "x"}); err != nil {
		t.Error(err)
	}
}

func TestHooks(t *testing.T) {
	l, lg := newLoader(t, wasm.Config{PoolSize: 2})
	g := load(t, l, source(t, "testguest", testGuest))
	ctx := context.Background()
	if err := g.Init(ctx, map[string]any{"greeting": "hej"}); err != nil {
		t.Fatal(err)
	}
	// Two calls at once need two guests: both ran OnInit.
	results := make(chan any, 2)
	hold, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	go func() { _, err := g.Invoke(hold, "spin", nil); results <- err }()
	time.Sleep(20 * time.Millisecond)
	out, err := g.Invoke(ctx, "greeting", nil)
	if err != nil || out["greeting"] != "hej" {
		t.Errorf("greeting in a second guest = %v, %v", out, err)
	}
	<-results
	if started, _ := g.Stats(); started < 2 {
		t.Errorf("started %d guests, want 2", started)
	}
	if err := g.Init(ctx, map[string]any{"fail": true}); !errors.Is(err, sdk.ErrBadParams) || !strings.Contains(err.Error(), "OnInit refuses") {
		t.Errorf("a failing OnInit: %v", err)
	}
	if err := g.Init(ctx, map[string]any{"x": time.Now()}); !errors.Is(err, sdk.ErrBadParams) {
		t.Errorf("a configuration outside the value model: %v", err)
	}
	// A guest whose OnInit failed tries again before its next call.
	if _, err := g.Invoke(ctx, "greeting", nil); !errors.Is(err, sdk.ErrBadParams) {
		t.Errorf("a call after a failed OnInit: %v", err)
	}
	if err := g.Init(ctx, map[string]any{"greeting": "hallo"}); err != nil {
		t.Fatal(err)
	}
	if out, err := g.Invoke(ctx, "greeting", nil); err != nil || out["greeting"] != "hallo" {
		t.Errorf("greeting after a new Init = %v, %v", out, err)
	}
	if err := g.Check(ctx); err != nil {
		t.Error(err)
	}
	if err := g.Close(); err != nil {
		t.Error(err)
	}
	if !strings.Contains(lg.String(), "closing after") {
		t.Errorf("OnClose did not run:\n%s", lg)
	}
	if _, err := g.Invoke(ctx, "count", nil); !errors.Is(err, sdk.ErrNotActive) {
		t.Errorf("a call after Close: %v", err)
	}
}

func TestOutput(t *testing.T) {
	l, lg := newLoader(t, wasm.Config{})
	g := load(t, l, source(t, "testguest", testGuest))
	if _, err := g.Invoke(context.Background(), "say", map[string]any{"text": "hi"}); err != nil {
		t.Fatal(err)
	}
	s := lg.String()
	for _, want := range []string{`level=INFO msg="to stdout: hi" stream=stdout module=testguest version=1.0.0`,
		`level=WARN msg="to stderr: hi" stream=stderr module=testguest version=1.0.0`} {
		if !strings.Contains(s, want) {
			t.Errorf("the log lacks %s:\n%s", want, s)
		}
	}
}

// TestOutputFlood: a guest that prints 100 MB leaves about logcap.Burst
// bytes in the log, and a record that says how much was dropped.
func TestOutputFlood(t *testing.T) {
	l, lg := newLoader(t, wasm.Config{})
	g := load(t, l, source(t, "testguest", testGuest))
	const flood = 100 << 20
	if _, err := g.Invoke(context.Background(), "flood", map[string]any{"bytes": int64(flood)}); err != nil {
		t.Fatal(err)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	s := lg.String()
	if len(s) > 3<<20 {
		t.Errorf("a guest printing %d MiB put %d bytes in the log, want at most 3 MiB", flood>>20, len(s))
	}
	dropped := 0
	for _, m := range regexp.MustCompile(`msg="module output dropped: it logs more than its limit" dropped_bytes=(\d+) dropped_records=\d+ limit_bytes_per_second=65536 module=testguest`).FindAllStringSubmatch(s, -1) {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	if dropped < flood-4<<20 {
		t.Errorf("the log says %d bytes of %d were dropped", dropped, flood)
	}
	t.Logf("log: %d bytes of %d printed", len(s), flood)
}

func TestInspect(t *testing.T) {
	in, err := wasm.Inspect(context.Background(), source(t, "fsguest", fsGuest), wasm.Config{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	if in.About.ABI != "1.1" || in.Manifest.Name != "reader" || len(in.Sum) != 64 || in.Size == 0 ||
		!strings.Contains(in.Refused, "asks for fs") {
		t.Errorf("%+v", in)
	}
	if _, err := wasm.Inspect(context.Background(), source(t, "future", futureGuest), wasm.Config{CacheDir: cacheDir}); !errors.Is(err, sdk.ErrIncompatible) {
		t.Errorf("inspecting a guest of ABI 2: %v", err)
	}
}

func TestLoaderClose(t *testing.T) {
	l, err := wasm.NewLoader(context.Background(), wasm.Config{CacheDir: cacheDir})
	if err != nil {
		t.Fatal(err)
	}
	g, err := l.Load(context.Background(), source(t, "testguest", testGuest))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := g.Invoke(context.Background(), "count", nil); !errors.Is(err, sdk.ErrNotActive) {
		t.Errorf("a call after the loader closed: %v", err)
	}
	if _, err := l.Load(context.Background(), source(t, "testguest", testGuest)); !errors.Is(err, sdk.ErrNotActive) {
		t.Errorf("a load after the loader closed: %v", err)
	}
}

// LoadBytes loads the bytes it is given, not the file at path: what the
// caller checked (a signature, say) is what runs.
func TestLoadBytes(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{})
	ctx := context.Background()
	data, err := os.ReadFile(example(t, "greeter"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "greeter.wasm")
	if err := os.WriteFile(path, []byte("swapped after the check"), 0o644); err != nil {
		t.Fatal(err)
	}
	i, err := l.LoadBytes(ctx, path, data)
	if err != nil {
		t.Fatal(err)
	}
	defer i.Close()
	if m := i.Manifest(); m.Name != "greeter" {
		t.Errorf("LoadBytes loaded %s@%s, want greeter", m.Name, m.Version)
	}
	if _, err := l.Load(ctx, path); err == nil || !strings.Contains(err.Error(), "is not a WebAssembly module") {
		t.Errorf("Load reads the file itself: %v", err)
	}
}
