package hotmod

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/sdk"
)

// instance is a loaded artifact, whatever its transport.
type instance interface {
	Manifest() sdk.Manifest
	Sum() string
	Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error)
	Init(ctx context.Context, config map[string]any) error
	Check(ctx context.Context) error
	Close() error
}

// closingBit marks a version's gate closed: no call may enter any more.
const closingBit = int64(1) << 62

// version is one loaded version of a module.
type version struct {
	name      string
	semver    *semver.Version
	transport Transport
	artifact  string
	inst      instance
	manifest  sdk.Manifest
	call      guard.Handler    // inst.Invoke behind the guards; nil without guards
	stats     *guard.Stats     // the guards' counters; nil without guards
	deps      []dep            // what it requires (see deps.go)
	stages    *stages.Recorder // how long each stage of its load took
	checked   time.Time        // when its load's last check passed
	caps      []capability     // what it provides
	inflight  *atomic.Int64    // the crash journal's count of its calls; nil without one

	goroutines *goroutines.Sampler // counts what it leaves running; nil out of process

	// gate counts calls in flight; closingBit is set when draining starts.
	gate      atomic.Int64
	drained   chan struct{}
	drainOnce sync.Once

	// Guarded by Registry.mu.
	state  State
	since  time.Time
	reason string // why it Failed, or what it waits for (Validated)
}

func newVersion(inst instance, sv *semver.Version, transport Transport, artifact string, rec *stages.Recorder) *version {
	m := inst.Manifest()
	if rec == nil {
		rec = new(stages.Recorder)
	}
	return &version{
		name: m.Name, semver: sv, transport: transport, artifact: artifact,
		inst: inst, manifest: m, drained: make(chan struct{}), stages: rec,
	}
}

// enter admits a call, or reports false when the version is draining; the
// caller then routes again on a fresh snapshot.
func (v *version) enter() bool {
	if v.gate.Add(1)&closingBit != 0 {
		v.leave()
		return false
	}
	return true
}

func (v *version) leave() {
	if v.gate.Add(-1) == closingBit {
		v.drainOnce.Do(func() { close(v.drained) })
	}
}

// close stops admitting calls; drained is closed once in-flight calls end.
func (v *version) close() {
	if v.gate.Or(closingBit) == 0 {
		v.drainOnce.Do(func() { close(v.drained) })
	}
}

// errReroute says a version began draining after the caller read the
// routing table: the call did not get in, and the caller routes again.
var errReroute = errors.New("reroute")

// invoke runs one call on v, through the guards if there are any, or
// returns errReroute.
func (v *version) invoke(ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
	if !v.enter() {
		return nil, errReroute
	}
	switch {
	case v.call != nil:
		out, err = v.call(ctx, method, params)
	case v.inflight != nil:
		out, err = v.counted(ctx, method, params)
	default:
		out, err = v.inst.Invoke(ctx, method, params)
	}
	v.leave()
	if err != nil {
		return nil, sdk.AsError(err)
	}
	return out, nil
}

// counted is inst.Invoke inside the crash journal's in-flight counter. It
// sits under the guards, so a call abandoned at its deadline counts until
// the module's code really returns. (Every transport's Invoke recovers its
// own panics.)
func (v *version) counted(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	v.inflight.Add(1)
	out, err := v.inst.Invoke(ctx, method, params)
	v.inflight.Add(-1)
	return out, err
}

func (v *version) inFlight() int64 { return v.gate.Load() &^ closingBit }

func (v *version) ref() string { return v.name + "@" + v.manifest.Version }

func (v *version) info() ModuleInfo {
	m := v.manifest
	info := ModuleInfo{
		Name: v.name, Version: m.Version, Transport: v.transport, State: v.state,
		Reason: v.reason, Artifact: v.artifact, Sum: v.inst.Sum(), Since: v.since,
		InFlight: v.inFlight(), Goroutines: v.goroutines.Count(v.ref()), Manifest: &m, Guard: v.guardStats(),
		Stages:  v.stages.Stages(),
		Runtime: runtimeOf(v.inst),
	}
	if v.stats != nil {
		// A call abandoned at its deadline is still running in the module.
		info.InFlight += v.stats.Lingering.Load()
	}
	return info
}

func (v *version) guardStats() *GuardStats {
	if v.stats == nil {
		return nil
	}
	s := v.stats.Snapshot()
	return &s
}
