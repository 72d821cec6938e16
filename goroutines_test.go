package hotmod_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// leaky is a builtin module whose "leak" starts a goroutine that runs until
// stop closes, and whose "hold" runs until release closes.
func leaky(stop, release <-chan struct{}) *sdk.Module {
	return sdk.New("leaky", "1.0.0").
		Handle("leak", func(context.Context, map[string]any) (map[string]any, error) {
			go func() { <-stop }()
			return nil, nil
		}).
		Handle("hold", func(context.Context, map[string]any) (map[string]any, error) {
			<-release
			return nil, nil
		})
}

// TestGoroutineLimits: the goroutines a builtin module leaves running are
// counted (calls in flight are not), crossing the warning is logged once,
// and crossing the limit quarantines the version.
func TestGoroutineLimits(t *testing.T) {
	stop, release := make(chan struct{}), make(chan struct{})
	defer close(stop)
	logs := &plugintest.Log{}
	r := hotmod.New(hotmod.WithLogger(slog.New(slog.NewTextHandler(logs, nil))), hotmod.WithCacheDir(t.TempDir()),
		hotmod.WithGuards(hotmod.Guards{Timeout: 10 * time.Second}), // calls run on the deadline guard's goroutine
		hotmod.WithGoroutineLimits(hotmod.GoroutineLimits{Warn: 5, Limit: 20, Every: 10 * time.Millisecond}))
	t.Cleanup(func() { _ = r.Close(context.Background()) })
	mustRegister(t, r, leaky(stop, release))
	ctx := context.Background()
	leak := func(n int) {
		t.Helper()
		for range n {
			if _, err := r.Invoke(ctx, "leaky", "leak", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func() int { return r.Modules()[0].Goroutines }
	warnings := func() int { return strings.Count(logs.String(), "a module holds many goroutines") }

	leak(5)
	waitFor(t, func() bool { return count() == 5 })
	if w := warnings(); w != 0 {
		t.Fatalf("5 goroutines, warning at more than 5: %d warnings\n%s", w, logs)
	}

	// A call in flight carries the label while it runs: it is not counted.
	held := make(chan error, 1)
	go func() { _, err := r.Invoke(ctx, "leaky", "hold", nil); held <- err }()
	waitFor(t, func() bool { return r.Modules()[0].InFlight == 1 })
	time.Sleep(50 * time.Millisecond) // several samples
	if n := count(); n != 5 {
		t.Fatalf("with a call in flight the count is %d; want 5", n)
	}
	close(release)
	if err := <-held; err != nil {
		t.Fatal(err)
	}

	leak(5)
	waitFor(t, func() bool { return count() == 10 && warnings() == 1 })
	if w := warnings(); w != 1 {
		t.Fatalf("10 goroutines: %d warnings; want 1 (once per crossing)\n%s", w, logs)
	}
	if !strings.Contains(logs.String(), "version=leaky@1.0.0 goroutines=") {
		t.Fatalf("the warning does not name the version:\n%s", logs)
	}

	leak(11)
	waitFor(t, func() bool { return r.Modules()[0].State == hotmod.StateFailed })
	m := r.Modules()[0]
	if !strings.Contains(m.Reason, "quarantined: it left 21 goroutines running, more than the limit of 20") {
		t.Fatalf("reason: %q", m.Reason)
	}
	if _, err := r.Invoke(ctx, "leaky", "leak", nil); !errors.Is(err, hotmod.ErrNotActive) {
		t.Fatalf("a call to the quarantined version: %v", err)
	}
	if m.Goroutines != 21 {
		t.Fatalf("the quarantined version still holds %d goroutines; want 21 listed", m.Goroutines)
	}
}

// TestGoroutinesOfCallers: goroutines that the caller starts after a call
// are not the module's, and a caller's own pprof labels come back after it.
func TestGoroutinesOfCallers(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	r := newRegistry(t, hotmod.WithGoroutineLimits(hotmod.GoroutineLimits{Every: 10 * time.Millisecond}))
	mustRegister(t, r, leaky(stop, nil))
	if _, err := r.Invoke(context.Background(), "leaky", "leak", nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		go func() { <-stop }() // the test's, not the module's
	}
	waitFor(t, func() bool { return r.Modules()[0].Goroutines == 1 })
	time.Sleep(30 * time.Millisecond)
	if n := r.Modules()[0].Goroutines; n != 1 {
		t.Fatalf("count %d; want 1: the caller's goroutines were counted", n)
	}
}
