package hotmod_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newRegistry(t testing.TB, opts ...hotmod.Option) *hotmod.Registry {
	t.Helper()
	opts = append([]hotmod.Option{hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir())}, opts...)
	r := hotmod.New(opts...)
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	return r
}

// greeter returns a builtin module that says which version answered.
func greeter(version string) *sdk.Module {
	return sdk.New("greeter", version).Handle("hello", func(_ context.Context, p map[string]any) (map[string]any, error) {
		name, err := sdk.String(p, "name")
		if err != nil {
			return nil, err
		}
		return map[string]any{"message": "hello, " + name, "version": version}, nil
	})
}

func mustRegister(t testing.TB, r *hotmod.Registry, m *sdk.Module) {
	t.Helper()
	if _, err := r.Register(context.Background(), m); err != nil {
		t.Fatalf("Register %s@%s: %v", m.Name(), m.Version(), err)
	}
}

func TestRouting(t *testing.T) {
	r := newRegistry(t)
	for _, v := range []string{"1.0.0", "1.4.2", "2.0.0-rc.1", "2.1.0"} {
		mustRegister(t, r, greeter(v))
	}
	ctx := context.Background()
	tests := []struct {
		ref, want string
		code      sdk.Code
	}{
		{ref: "greeter", want: "2.1.0"},
		{ref: "greeter@1.0.0", want: "1.0.0"},
		{ref: "greeter@^1.0", want: "1.4.2"},
		{ref: "greeter@~1.0", want: "1.0.0"},
		{ref: "greeter@>=1.1 <2", want: "1.4.2"},
		{ref: "greeter@2.0.0-rc.1", want: "2.0.0-rc.1"},
		{ref: "greeter@^3", code: sdk.CodeUnknownModule},
		{ref: "greeter@1.9.9", code: sdk.CodeUnknownModule},
		{ref: "greeter@not a range", code: sdk.CodeUnknownModule},
		{ref: "nobody", code: sdk.CodeUnknownModule},
		{ref: "", code: sdk.CodeUnknownModule},
	}
	for _, tc := range tests {
		t.Run(tc.ref, func(t *testing.T) {
			out, err := r.Invoke(ctx, tc.ref, "hello", map[string]any{"name": "Ada"})
			if tc.code != "" {
				if sdk.CodeOf(err) != tc.code {
					t.Fatalf("Invoke(%q) = %v, %v; want code %s", tc.ref, out, err, tc.code)
				}
				return
			}
			if err != nil || out["version"] != tc.want {
				t.Fatalf("Invoke(%q) = %v, %v; want version %s", tc.ref, out, err, tc.want)
			}
		})
	}
}

func TestErrorsSayWhatIsWrong(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, greeter("1.0.0"))
	ctx := context.Background()

	_, err := r.Invoke(ctx, "greeter", "bye", nil)
	if !errors.Is(err, hotmod.ErrUnknownMethod) || !strings.Contains(err.Error(), "it has: hello") {
		t.Errorf("unknown method: %v", err)
	}
	_, err = r.Invoke(ctx, "greeter", "hello", map[string]any{"name": 7})
	if !errors.Is(err, hotmod.ErrBadParams) || !strings.Contains(err.Error(), `"name" must be a string`) {
		t.Errorf("bad params: %v", err)
	}
	_, err = r.Invoke(ctx, "greter", "hello", nil)
	if !errors.Is(err, hotmod.ErrUnknownModule) || !strings.Contains(err.Error(), "loaded: greeter") {
		t.Errorf("unknown module: %v", err)
	}
	_, err = r.Invoke(ctx, "greeter@^2", "hello", nil)
	if !errors.Is(err, hotmod.ErrUnknownModule) || !strings.Contains(err.Error(), "active: 1.0.0") {
		t.Errorf("no version in range: %v", err)
	}
}

func TestModuleErrorsKeepTheirCode(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, sdk.New("errs", "1.0.0").
		Handle("plain", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, errors.New("disk full")
		}).
		Handle("coded", func(context.Context, map[string]any) (map[string]any, error) {
			return nil, fmt.Errorf("while quoting: %w", sdk.Errorf(sdk.CodeBadParams, "qty must be positive"))
		}).
		Handle("deadline", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			<-ctx.Done()
			return nil, ctx.Err()
		}))
	ctx := context.Background()
	if _, err := r.Invoke(ctx, "errs", "plain", nil); !errors.Is(err, hotmod.ErrModule) || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("plain error: %v", err)
	}
	if _, err := r.Invoke(ctx, "errs", "coded", nil); !errors.Is(err, hotmod.ErrBadParams) {
		t.Errorf("coded error: %v", err)
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := r.Invoke(tctx, "errs", "deadline", nil); !errors.Is(err, hotmod.ErrTimeout) {
		t.Errorf("deadline: %v", err)
	}
}

func TestPanicBecomesErrorAndHostKeepsServing(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, sdk.New("boom", "1.0.0").
		Handle("panic", func(context.Context, map[string]any) (map[string]any, error) { panic("kaboom") }).
		Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return map[string]any{"ok": true}, nil }))
	_, err := r.Invoke(context.Background(), "boom", "panic", nil)
	if !errors.Is(err, hotmod.ErrPanic) || !strings.Contains(err.Error(), "kaboom") {
		t.Fatalf("panic: %v", err)
	}
	if out, err := r.Invoke(context.Background(), "boom", "ok", nil); err != nil || out["ok"] != true {
		t.Fatalf("after panic: %v, %v", out, err)
	}
}

func TestSameNameAndVersionIsRefused(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, greeter("1.0.0"))
	_, err := r.Register(context.Background(), greeter("1.0.0"))
	if !errors.Is(err, hotmod.ErrIncompatible) || !strings.Contains(err.Error(), "already loaded") {
		t.Fatalf("clash: %v", err)
	}
	if out, err := r.Invoke(context.Background(), "greeter", "hello", map[string]any{"name": "x"}); err != nil || out["version"] != "1.0.0" {
		t.Fatalf("old version must keep serving: %v, %v", out, err)
	}
}

func TestFailedInitClosesAndLeavesOthersServing(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, greeter("1.0.0"))
	var closed atomic.Bool
	bad := greeter("1.1.0").
		OnInit(func(context.Context, map[string]any) error { return errors.New("no database") }).
		OnClose(func() error { closed.Store(true); return nil })
	events, cancel := r.Subscribe()
	defer cancel()
	_, err := r.Register(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "Init failed: no database") {
		t.Fatalf("Register = %v; want the Init failure", err)
	}
	if !closed.Load() {
		t.Error("Close must run after a failed Init")
	}
	if got := nextState(t, events); got != "greeter@1.1.0 None → Loaded" {
		t.Errorf("first event %q", got)
	}
	if got := nextState(t, events); !strings.HasPrefix(got, "greeter@1.1.0 Loaded → Failed: incompatible: greeter@1.1.0: Init failed") {
		t.Errorf("second event %q", got)
	}
	if out, err := r.Invoke(context.Background(), "greeter", "hello", map[string]any{"name": "x"}); err != nil || out["version"] != "1.0.0" {
		t.Fatalf("1.0.0 must keep serving: %v, %v", out, err)
	}
}

func TestInitGetsItsConfig(t *testing.T) {
	r := newRegistry(t, hotmod.WithModuleConfig("cfg", map[string]any{"currency": "EUR"}))
	var got any
	mustRegister(t, r, sdk.New("cfg", "1.0.0").
		Handle("x", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }).
		OnInit(func(_ context.Context, c map[string]any) error { got = c["currency"]; return nil }))
	if got != "EUR" {
		t.Fatalf("Init saw currency %v", got)
	}
}

func nextState(t *testing.T, events <-chan hotmod.Event) string {
	t.Helper()
	select {
	case e := <-events:
		return e.String()
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
		return ""
	}
}

func TestLifecycleEvents(t *testing.T) {
	r := newRegistry(t)
	events, cancel := r.Subscribe()
	defer cancel()
	mustRegister(t, r, greeter("1.0.0"))
	if err := r.Unload(context.Background(), "greeter@1.0.0"); err != nil {
		t.Fatal(err)
	}
	want := []string{"None → Loaded", "Loaded → Validated", "Validated → Active", "Active → Draining", "Draining → Unloaded"}
	for _, w := range want {
		if got := nextState(t, events); got != "greeter@1.0.0 "+w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
	if len(r.Modules()) != 0 {
		t.Fatalf("unloaded module still listed: %+v", r.Modules())
	}
	if _, err := r.Invoke(context.Background(), "greeter", "hello", nil); !errors.Is(err, hotmod.ErrUnknownModule) {
		t.Fatalf("after unload: %v", err)
	}
}

func TestUnloadWaitsForInFlightCalls(t *testing.T) {
	r := newRegistry(t)
	started, release := make(chan struct{}), make(chan struct{})
	mustRegister(t, r, sdk.New("slow", "1.0.0").Handle("wait", func(context.Context, map[string]any) (map[string]any, error) {
		close(started)
		<-release
		return map[string]any{"done": true}, nil
	}))
	result := make(chan error, 1)
	go func() {
		_, err := r.Invoke(context.Background(), "slow", "wait", nil)
		result <- err
	}()
	<-started
	unloaded := make(chan error, 1)
	go func() { unloaded <- r.Unload(context.Background(), "slow") }()

	// While the call runs the version is Draining and takes no new calls.
	waitFor(t, func() bool { m := r.Modules(); return len(m) == 1 && m[0].State == hotmod.StateDraining })
	if m := r.Modules()[0]; m.InFlight != 1 {
		t.Errorf("in flight = %d, want 1", m.InFlight)
	}
	if _, err := r.Invoke(context.Background(), "slow", "wait", nil); !errors.Is(err, hotmod.ErrNotActive) {
		t.Errorf("new call while draining: %v, want not_active", err)
	}
	select {
	case err := <-unloaded:
		t.Fatalf("Unload returned (%v) before the in-flight call finished", err)
	default:
	}
	close(release)
	if err := <-result; err != nil {
		t.Fatalf("in-flight call failed: %v", err)
	}
	if err := <-unloaded; err != nil {
		t.Fatalf("Unload: %v", err)
	}
}

func TestDrainTimeoutBoundsUnload(t *testing.T) {
	r := newRegistry(t, hotmod.WithDrainTimeout(20*time.Millisecond))
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	mustRegister(t, r, sdk.New("stuck", "1.0.0").Handle("wait", func(context.Context, map[string]any) (map[string]any, error) {
		close(started)
		<-release
		return nil, nil
	}))
	go func() { _, _ = r.Invoke(context.Background(), "stuck", "wait", nil) }()
	<-started
	err := r.Unload(context.Background(), "stuck")
	if !errors.Is(err, hotmod.ErrTimeout) || !strings.Contains(err.Error(), "1 calls still running") {
		t.Fatalf("Unload = %v; want a drain timeout naming the running call", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHammerSwap beats on one module from many goroutines while versions
// come and go. No call may fail, and each is answered by a live version.
func TestHammerSwap(t *testing.T) {
	r := newRegistry(t)
	mustRegister(t, r, greeter("1.0.0"))
	ctx, stop := context.WithCancel(context.Background())
	var calls, failures atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				out, err := r.Invoke(context.Background(), "greeter", "hello", map[string]any{"name": "x"})
				calls.Add(1)
				if err != nil || !strings.HasPrefix(out["version"].(string), "1.") {
					failures.Add(1)
					t.Errorf("call failed during swap: %v %v", out, err)
					return
				}
			}
		}()
	}
	prev := "1.0.0"
	for i := 1; i <= 50; i++ {
		next := fmt.Sprintf("1.%d.0", i)
		mustRegister(t, r, greeter(next))
		if err := r.Unload(context.Background(), "greeter@"+prev); err != nil {
			t.Fatal(err)
		}
		prev = next
	}
	stop()
	wg.Wait()
	if failures.Load() != 0 || calls.Load() == 0 {
		t.Fatalf("%d calls, %d failed", calls.Load(), failures.Load())
	}
}

func TestWatchRecordsBadArtifacts(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "junk.so"), []byte("not a plugin at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "elsewhere.so")
	if err := os.WriteFile(outside, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.so")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "README.txt"), []byte("ignored"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRegistry(t, hotmod.WithSettle(5*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := r.Watch(ctx, dir); err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for _, m := range r.Modules() {
		if m.State != hotmod.StateFailed {
			t.Errorf("%s is %s, want Failed", m.Artifact, m.State)
		}
		reasons[filepath.Base(m.Artifact)] = m.Reason
	}
	if len(reasons) != 2 {
		t.Fatalf("want 2 failed artifacts, got %v", reasons)
	}
	if !strings.Contains(reasons["link.so"], "outside the watched directory") {
		t.Errorf("symlink: %q", reasons["link.so"])
	}
	if reasons["junk.so"] == "" {
		t.Errorf("junk.so has no reason")
	}

	// Removing the file forgets its failure.
	if err := os.Remove(filepath.Join(dir, "junk.so")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(r.Modules()) == 1 })
}
