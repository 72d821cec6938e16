package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// TestHammer beats on one version's pool from many goroutines, with
// panics and timeouts thrown in, on both tiers: every call gets its own
// answer, guests that failed are replaced, and the pool never holds more
// than its size. On the interruptible tier a timeout stops an endless
// loop; on the trusted one the Deadline guard abandons a long loop at its
// deadline and the guest comes back to the pool when the loop ends.
func TestHammer(t *testing.T) {
	for _, tier := range tiers {
		t.Run(string(tier), func(t *testing.T) { hammer(t, tier) })
	}
}

func hammer(t *testing.T, tier wasm.Tier) {
	const (
		pool       = 3
		goroutines = 16
	)
	calls := 200
	if testing.Short() {
		calls = 50
	}
	i := onTier(t, tier, wasm.Config{PoolSize: pool}, source(t, "testguest", testGuest))
	invoke, st := guarded(i, -1, nil)
	g := struct{ Invoke guard.Handler }{invoke}
	loop, params := "spin", map[string]any(nil)
	if tier == wasm.TierTrusted {
		noGC(t)
		loop, params = "work", map[string]any{"n": workFor(t, invoke, 100*time.Millisecond)}
	}
	var wg sync.WaitGroup
	var panics, timeouts, late atomic.Int64
	errs := make(chan error, goroutines)
	for w := 0; w < goroutines; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			ctx := context.Background()
			for c := 0; c < calls; c++ {
				a, b := int64(w), int64(c)
				var err error
				var out map[string]any
				switch c % 50 {
				case 17:
					_, err = g.Invoke(ctx, "boom", nil)
					if !errors.Is(err, sdk.ErrPanic) {
						errs <- fmt.Errorf("boom: %v", err)
						return
					}
					panics.Add(1)
					continue
				case 33:
					short, cancel := context.WithTimeout(ctx, 5*time.Millisecond)
					start := time.Now()
					out, err = g.Invoke(short, loop, params)
					cancel()
					if tier == wasm.TierTrusted && err == nil && out["x"] != nil {
						// The loop ended before the guard's timer ran: on a
						// busy machine a goroutine can wait that long for a P,
						// and guests starting after the panics run Go's
						// runtime initialisation outside the running slots.
						late.Add(1)
						continue
					}
					if !errors.Is(err, sdk.ErrTimeout) {
						errs <- fmt.Errorf("%s %v with a 5ms deadline: %v, %v after %s", loop, params, out, err, time.Since(start))
						return
					}
					timeouts.Add(1)
					continue
				case 1, 2, 3:
					out, err = g.Invoke(ctx, "add_dynamic", map[string]any{"a": a, "b": b})
				default:
					out, err = g.Invoke(ctx, "add", map[string]any{"a": a, "b": b})
				}
				if err != nil || out["sum"] != a+b {
					errs <- fmt.Errorf("worker %d call %d: add(%d, %d) = %v, %v", w, c, a, b, out, err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if tier == wasm.TierTrusted {
		for end := time.Now().Add(30 * time.Second); st.Lingering.Load() > 0 && time.Now().Before(end); {
			time.Sleep(10 * time.Millisecond)
		}
		if st.Abandoned.Load() == 0 || st.Lingering.Load() != 0 {
			t.Errorf("%d calls abandoned, %d still running; want some, and none left", st.Abandoned.Load(), st.Lingering.Load())
		}
	}
	started, discarded := i.Stats()
	t.Logf("%d calls; %d panics and %d timeouts (%d abandoned, %d answered before the guard saw their deadline); %d guests started, %d discarded",
		goroutines*calls, panics.Load(), timeouts.Load(), st.Abandoned.Load(), late.Load(), started, discarded)
	if live, _ := i.Live(); live < 1 || live > pool {
		t.Errorf("%d guests alive, pool size %d", live, pool)
	}
	if discarded < panics.Load() {
		t.Errorf("%d discarded after %d panics", discarded, panics.Load())
	}
}

// versioned is what a caller routes to: a version and a gate that counts
// its calls in flight, as the registry keeps one.
type versioned struct {
	inst     *wasm.Instance
	message  string
	inFlight sync.WaitGroup
	mu       sync.RWMutex // held for reading by calls, for writing to close the gate
	closed   bool
}

func (v *versioned) enter() bool {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.closed {
		return false
	}
	v.inFlight.Add(1)
	return true
}

// drain closes the gate, waits for calls in flight and closes the version.
func (v *versioned) drain() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.inFlight.Wait()
	return v.inst.Close()
}

// TestHammerSwap swaps between two versions of a module, loaded and
// compiled while calls run, as the registry does: no call fails, every call
// gets the answer of the version it was routed to, and each drained
// version closes.
func TestHammerSwap(t *testing.T) {
	l, _ := newLoader(t, wasm.Config{PoolSize: 2})
	v1 := example(t, "greeter")
	v2 := artifact(t, "greeter-2", func() string {
		return plugintest.Example(t, "greeter", `const version = "1.0.0"`, `const version = "2.0.0"`,
			`"hello, " + name`, `"hi, " + name`)
	})
	paths := []string{v1, v2}
	messages := []string{"hello, ", "hi, "}
	swaps := 6
	if testing.Short() {
		swaps = 2
	}

	var current atomic.Pointer[versioned]
	first, err := l.Load(context.Background(), v1)
	if err != nil {
		t.Fatal(err)
	}
	current.Store(&versioned{inst: first, message: messages[0]})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var ok atomic.Int64
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for c := 0; ; c++ {
				select {
				case <-stop:
					return
				default:
				}
				v := current.Load()
				if !v.enter() {
					continue // draining: route again
				}
				name := fmt.Sprintf("w%d-%d", w, c)
				out, err := v.inst.Invoke(context.Background(), "hello", map[string]any{"name": name})
				v.inFlight.Done()
				if err != nil || out["message"] != v.message+name {
					errs <- fmt.Errorf("%s: %v, %v (want %q)", v.inst.Manifest().Version, out, err, v.message+name)
					return
				}
				ok.Add(1)
			}
		}(w)
	}
	for s := 1; s <= swaps; s++ {
		next, err := l.Load(context.Background(), paths[s%2])
		if err != nil {
			t.Fatal(err)
		}
		old := current.Swap(&versioned{inst: next, message: messages[s%2]})
		if err := old.drain(); err != nil {
			t.Errorf("closing %s: %v", old.inst.Manifest().Version, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := current.Load().drain(); err != nil {
		t.Error(err)
	}
	t.Logf("%d calls across %d swaps", ok.Load(), swaps)
	if ok.Load() == 0 {
		t.Error("no call went through")
	}
}

// TestLoadDoesNotBlockCalls compiles a module from scratch (an empty cache)
// while another version serves: calls keep being answered.
func TestLoadDoesNotBlockCalls(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("compiles from scratch (over a minute under the race detector, whose instrumented wazero compiles 30 times slower)")
	}
	l, _ := newLoader(t, wasm.Config{CacheDir: t.TempDir()})
	g := load(t, l, source(t, "testguest", testGuest))
	pricing := example(t, "pricing")
	loaded := make(chan error, 1)
	start := time.Now()
	go func() {
		i, err := l.Load(context.Background(), pricing)
		if err == nil {
			i.Close()
		}
		loaded <- err
	}()
	var n int
	var worst time.Duration
	for {
		select {
		case err := <-loaded:
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d calls answered during a %s cold load; the slowest took %s", n, time.Since(start), worst)
			if n < 10 {
				t.Errorf("only %d calls answered during the load", n)
			}
			return
		default:
		}
		c := time.Now()
		out, err := g.Invoke(context.Background(), "add", map[string]any{"a": int64(n), "b": int64(1)})
		if err != nil || out["sum"] != int64(n+1) {
			t.Fatal(out, err)
		}
		worst = max(worst, time.Since(c))
		n++
	}
}
