package guard

import (
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// hold starts n block calls and waits until all of them run in the module.
func hold(t *testing.T, f *faulty, h Handler, n int) *sync.WaitGroup {
	t.Helper()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := h(bg, "block", nil); err != nil {
				t.Errorf("a held call: %v", err)
			}
		}()
	}
	f.waitEntered(t, n)
	return &wg
}

func TestBulkheadRefusesOverTheLimit(t *testing.T) {
	const limit = 4
	f := newFaulty("1.0.0")
	h, st := f.chain(Bulkhead(BulkheadConfig{Limit: limit}))
	wg := hold(t, f, h, limit)
	if snap := st.Snapshot(); snap.ModuleInFlight != limit || snap.ModuleLimit != limit {
		t.Fatalf("with %d calls held: %+v", limit, snap)
	}
	before := f.calls.Load()
	start := time.Now()
	for i := 0; i < 100; i++ {
		_, err := h(bg, "ok", nil)
		wantCode(t, "a call over the limit", err, sdk.ErrOverloaded)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing 100 calls took %s: they should not wait", d)
	}
	if f.calls.Load() != before {
		t.Error("a refused call reached the module")
	}
	if got := st.Overloaded.Load(); got != 100 {
		t.Errorf("Overloaded = %d, want 100", got)
	}
	if snap := st.Snapshot(); snap.ModuleInFlight != limit {
		t.Errorf("refused calls changed the count in flight: %+v", snap)
	}
	f.open()
	wg.Wait()
	if got := st.Snapshot().ModuleInFlight; got != 0 {
		t.Fatalf("%d in flight after every call returned", got)
	}
	if _, err := h(bg, "ok", nil); err != nil {
		t.Fatalf("a call once slots were free: %v", err)
	}
}

func TestBulkheadWaitsBriefly(t *testing.T) {
	const limit = 2
	f := newFaulty("1.0.0")
	h, st := f.chain(Bulkhead(BulkheadConfig{Limit: limit, Wait: 5 * time.Second}))
	wg := hold(t, f, h, limit)

	// limit callers may wait; the next is refused at once: no queue grows.
	waited := make(chan error, limit)
	for i := 0; i < limit; i++ {
		go func() {
			_, err := h(bg, "ok", nil)
			waited <- err
		}()
	}
	sem := st.bulkhead.Load()
	eventually(t, "two callers wait", func() bool { return sem.waiting.Load() == limit })
	start := time.Now()
	_, err := h(bg, "ok", nil)
	wantCode(t, "a caller beyond the waiting room", err, sdk.ErrOverloaded)
	if d := time.Since(start); d > time.Second {
		t.Errorf("a caller with no room to wait waited %s", d)
	}
	f.open() // the held calls return, and the waiters get their slots
	for i := 0; i < limit; i++ {
		if err := <-waited; err != nil {
			t.Errorf("a waiting call: %v", err)
		}
	}
	wg.Wait()
	if n, w := sem.n.Load(), sem.waiting.Load(); n != 0 || w != 0 {
		t.Errorf("after everything returned: %d in flight, %d waiting", n, w)
	}
}

func TestBulkheadWaitEnds(t *testing.T) {
	f := newFaulty("1.0.0")
	h, _ := f.chain(Bulkhead(BulkheadConfig{Limit: 1, Wait: 30 * time.Millisecond}))
	wg := hold(t, f, h, 1)
	start := time.Now()
	_, err := h(bg, "ok", nil)
	wantCode(t, "a call that waited in vain", err, sdk.ErrOverloaded)
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("it gave up after %s, before its 30ms", d)
	}
	f.open()
	wg.Wait()
}

// Versions of one module share one limit when they share the interceptor,
// as they do in the registry: a swap does not double what a module may run.
func TestBulkheadPerModule(t *testing.T) {
	b := Bulkhead(BulkheadConfig{Limit: 2, Modules: map[string]int{"other": -1}})
	v1, v2 := newFaulty("1.0.0"), newFaulty("1.1.0")
	h1, _ := v1.chain(b)
	h2, st2 := v2.chain(b)
	wg := hold(t, v1, h1, 2)
	_, err := h2(bg, "ok", nil)
	wantCode(t, "the other version of a full module", err, sdk.ErrOverloaded)
	if st2.Overloaded.Load() != 1 {
		t.Error("the refusal was not counted on the version called")
	}
	other := newFaulty("1.0.0")
	info := other.info("native")
	info.Module = "other"
	ho := Chain(info, other.mod.Invoke, b)
	if _, err := ho(bg, "ok", nil); err != nil {
		t.Errorf("a module without a limit: %v", err)
	}
	if info.Stats.Snapshot().ModuleLimit != 0 {
		t.Error("a module without a limit shows one")
	}
	v1.open()
	wg.Wait()
}
