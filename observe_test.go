package hotmod_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// recorder is an Observer that writes down every call it is told of.
type recorder struct {
	mu       sync.Mutex
	versions []string
	calls    []string
}

func (o *recorder) ForVersion(v hotmod.VersionInfo) hotmod.VersionObserver {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.versions = append(o.versions, fmt.Sprintf("%s@%s %s %d methods", v.Module, v.Version, v.Transport, len(v.Manifest.Methods)))
	return &versionRecorder{o: o, ref: v.Module + "@" + v.Version}
}

type versionRecorder struct {
	o   *recorder
	ref string
}

type startKey struct{}

func (v *versionRecorder) CallStart(ctx context.Context, c hotmod.CallInfo) context.Context {
	return context.WithValue(ctx, startKey{}, c.Method)
}

func (v *versionRecorder) CallEnd(ctx context.Context, c hotmod.CallInfo, took time.Duration, err error) {
	code := "ok"
	if err != nil {
		code = string(sdk.CodeOf(err))
	}
	v.o.mu.Lock()
	defer v.o.mu.Unlock()
	seen, _ := ctx.Value(startKey{}).(string) // the context CallStart returned
	caller := hotmod.Caller(ctx)
	if caller != "" {
		caller = " from " + caller
	}
	v.o.calls = append(v.o.calls, fmt.Sprintf("%s.%s %s%s ctx=%v took>0=%v", v.ref, c.Method, code, caller, seen == c.Method, took > 0))
}

func TestObserverSeesEveryCall(t *testing.T) {
	for _, guarded := range []bool{false, true} {
		t.Run(fmt.Sprintf("guards=%v", guarded), func(t *testing.T) {
			o := &recorder{}
			opts := []hotmod.Option{hotmod.WithObserver(o)}
			if guarded {
				opts = append(opts, hotmod.WithGuards(hotmod.Guards{BreakerFailures: 1, BreakerCoolDown: time.Hour}))
			}
			r := newRegistry(t, opts...)
			mustRegister(t, r, faulty(nil))
			mustRegister(t, r, geo("1.2.0"))
			mustRegister(t, r, shop("1.0.0", "geo", "^1.2", false))
			ctx := context.Background()
			_, _ = r.Invoke(ctx, "faulty", "ok", nil)
			_, _ = r.Invoke(ctx, "faulty", "fail", nil)
			_, _ = r.Invoke(ctx, "faulty", "fail", nil) // circuit_open with guards
			if _, err := r.Invoke(ctx, "shop", "quote", nil); err != nil {
				t.Fatal(err)
			}
			second := "faulty@1.0.0.fail module_error ctx=true took>0=true"
			if guarded {
				second = "faulty@1.0.0.fail circuit_open ctx=true took>0=true"
			}
			want := []string{
				"faulty@1.0.0.ok ok ctx=true took>0=true",
				"faulty@1.0.0.fail module_error ctx=true took>0=true",
				second,
				"geo@1.2.0.locate ok from shop@1.0.0 ctx=true took>0=true",
				"shop@1.0.0.quote ok ctx=true took>0=true",
			}
			o.mu.Lock()
			defer o.mu.Unlock()
			if fmt.Sprint(o.calls) != fmt.Sprint(want) {
				t.Errorf("calls seen:\n%q\nwant:\n%q", o.calls, want)
			}
			if len(o.versions) != 3 || o.versions[0] != "faulty@1.0.0 builtin 3 methods" {
				t.Errorf("versions seen: %q", o.versions)
			}
		})
	}
}

// Every version lists how long each stage of its load took, in its
// ModuleInfo and in the events that end a stage of its life.
func TestLoadStages(t *testing.T) {
	r := newRegistry(t)
	events, cancel := r.Subscribe()
	defer cancel()
	info := mustRegisterInfo(t, r, greeter("1.0.0"))
	if got := stageNames(info.Stages); got != "validate init check activate" {
		t.Errorf("stages of a builtin: %q", got)
	}
	mustRegister(t, r, shop("1.0.0", "geo", "^1.2", false))
	mustRegister(t, r, geo("1.2.0"))
	if got := stageNames(state(t, r, "shop@1.0.0").Stages); got != "validate init check wait" {
		t.Errorf("stages of a version that waited: %q", got)
	}
	if err := r.Unload(context.Background(), "greeter"); err != nil {
		t.Fatal(err)
	}
	var active, unloaded hotmod.Event
	for active.To != hotmod.StateActive || unloaded.To != hotmod.StateUnloaded {
		select {
		case e := <-events:
			if e.Module == "greeter" && e.To == hotmod.StateActive {
				active = e
			}
			if e.Module == "greeter" && e.To == hotmod.StateUnloaded {
				unloaded = e
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no greeter events")
		}
	}
	if got := stageNames(active.Stages); got != "validate init check activate" {
		t.Errorf("stages in the Active event: %q", got)
	}
	if got := stageNames(unloaded.Stages); got != "validate init check activate drain" {
		t.Errorf("stages in the Unloaded event: %q", got)
	}
}

// A version that waits for its requirements goes Loaded → Validated once,
// with the reason: never Validated → Validated.
func TestNoValidatedSelfTransition(t *testing.T) {
	r := newRegistry(t)
	events, cancel := r.Subscribe()
	defer cancel()
	mustRegister(t, r, greeter("1.0.0"))
	mustRegister(t, r, shop("1.0.0", "geo", "^1.2", false))
	mustRegister(t, r, geo("1.2.0"))
	want := []string{
		"greeter@1.0.0 None → Loaded", "greeter@1.0.0 Loaded → Validated", "greeter@1.0.0 Validated → Active",
		"shop@1.0.0 None → Loaded", "shop@1.0.0 Loaded → Validated: waiting for geo ^1.2",
		"geo@1.2.0 None → Loaded", "geo@1.2.0 Loaded → Validated", "geo@1.2.0 Validated → Active",
		"shop@1.0.0 Validated → Active",
	}
	for _, w := range want {
		if got := nextState(t, events); got != w {
			t.Fatalf("event %q, want %q", got, w)
		}
	}
}

// A call abandoned at its deadline still runs in the module: it counts in
// flight until it returns.
func TestAbandonedCallCountsInFlight(t *testing.T) {
	release := make(chan struct{})
	r := newRegistry(t, hotmod.WithGuards(hotmod.Guards{Timeout: 20 * time.Millisecond, BreakerFailures: -1}))
	mustRegister(t, r, faulty(release))
	if _, err := r.Invoke(context.Background(), "faulty", "hang", nil); !errors.Is(err, hotmod.ErrTimeout) {
		t.Fatalf("hang: %v", err)
	}
	if m := r.Modules()[0]; m.InFlight != 1 || m.Guard.Lingering != 1 {
		t.Fatalf("after an abandoned call: in flight %d, lingering %d; want 1 and 1", m.InFlight, m.Guard.Lingering)
	}
	close(release)
	waitFor(t, func() bool { return r.Modules()[0].InFlight == 0 })
}

func mustRegisterInfo(t *testing.T, r *hotmod.Registry, m *sdk.Module) hotmod.ModuleInfo {
	t.Helper()
	info, err := r.Register(context.Background(), m)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func stageNames(ss []hotmod.Stage) string {
	var s string
	for i, st := range ss {
		if i > 0 {
			s += " "
		}
		s += st.Name
	}
	return s
}
