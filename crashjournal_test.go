package hotmod_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// BenchmarkCrashJournal is what the crash journal's in-flight counter adds
// to a call (WithStateDir): two atomic adds on a mapped page, on a module
// that does nothing. "parallel" has every core call one version, so the
// counter's cache line is shared.
func BenchmarkCrashJournal(b *testing.B) {
	nop := sdk.New("nop", "1.0.0").Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })
	ctx := context.Background()
	for _, c := range []struct {
		name string
		opts []hotmod.Option
	}{
		{"off", nil},
		{"journal", []hotmod.Option{hotmod.WithStateDir(filepath.Join(b.TempDir(), "state"))}},
	} {
		r := newRegistry(b, c.opts...)
		mustRegister(b, r, nop)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.Invoke(ctx, "nop", "nop", nil)
			}
		})
		b.Run(c.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, _ = r.Invoke(ctx, "nop", "nop", nil)
				}
			})
		})
	}
}

// TestStateDirHammer calls a builtin module from many goroutines with the
// crash journal on, and closes the registry while calls may still run.
func TestStateDirHammer(t *testing.T) {
	r := hotmod.New(hotmod.WithLogger(quiet), hotmod.WithCacheDir(t.TempDir()), hotmod.WithStateDir(filepath.Join(t.TempDir(), "state")))
	mustRegister(t, r, greeter("1.0.0"))
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 500; j++ {
				if _, err := r.Invoke(context.Background(), "greeter", "hello", map[string]any{"name": "x"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if q, err := r.Quarantined(); err != nil || len(q) != 0 {
		t.Errorf("Quarantined on a fresh state directory: %v, %v", q, err)
	}
	if _, err := r.LiftQuarantine("0123456789"); err == nil {
		t.Errorf("lifting what is not quarantined did not fail")
	}
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}
