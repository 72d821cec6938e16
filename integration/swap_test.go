package integration

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/hotmod/hotmod"
)

// swapUnderLoad serves v1 under file in a watched directory and replaces it
// with v2, then v1 again, then v2, while eight goroutines call greeter: no
// call may fail, each is answered by v1 or v2, and both answer. It returns
// the registry and the directory, with v2 serving.
func swapUnderLoad(t *testing.T, file, v1, v2 string) (*hotmod.Registry, string) {
	dir := t.TempDir()
	place(t, v1, dir, file)
	reg := watch(t, dir)
	if msg, err := hello(reg, "greeter"); err != nil || msg != "hello, Ada" {
		t.Fatalf("v1: %q, %v", msg, err)
	}
	var calls, byV1, byV2 atomic.Int64
	var failed atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				msg, err := hello(reg, "greeter")
				calls.Add(1)
				switch {
				case err == nil && msg == "hello, Ada":
					byV1.Add(1)
				case err == nil && msg == "hi, Ada":
					byV2.Add(1)
				default:
					failed.Store(fmt.Sprintf("%q, %v", msg, err))
					return
				}
			}
		}()
	}
	for _, step := range []struct{ src, ref string }{{v2, "greeter@2.0.0"}, {v1, "greeter@1.0.0"}, {v2, "greeter@2.0.0"}} {
		place(t, step.src, dir, file)
		waitFor(t, step.ref+" alone active", func() bool {
			a := active(reg)
			return len(a) == 1 && a[0] == step.ref
		})
		before := calls.Load()
		waitFor(t, "calls after the swap", func() bool { return calls.Load() > before+50 })
	}
	close(stop)
	wg.Wait()
	if f := failed.Load(); f != nil {
		t.Fatalf("a call failed during the swaps of %s: %v", file, f)
	}
	if byV1.Load() == 0 || byV2.Load() == 0 {
		t.Fatalf("answers: v1 %d, v2 %d; want both", byV1.Load(), byV2.Load())
	}
	t.Logf("%d calls during 3 swaps of %s (v1 answered %d, v2 %d), none failed", calls.Load(), file, byV1.Load(), byV2.Load())
	return reg, dir
}
