package hotmod

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/internal/contract"
	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/internal/journal"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/process"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk"
)

// Registry holds modules and routes calls to them. It is safe for concurrent
// use; Invoke never takes a lock.
type Registry struct {
	cfg    config
	routes atomic.Pointer[table]

	// loadMu serializes lifecycle operations (Load, Register, Unload), so
	// that checks against the loaded set and the switch that follows are one
	// step. Calls never wait for it.
	loadMu sync.Mutex

	mu     sync.Mutex // guards the fields below and every version's state
	all    []*version
	failed map[string]ModuleInfo // by artifact path: loads that failed
	closed bool

	native      *native.Loader
	nativeOnce  sync.Once
	process     *process.Loader
	processOnce sync.Once
	wasm        *wasm.Loader
	wasmErr     error
	wasmOnce    sync.Once

	watches watchSet     // the directories Watch keeps in step
	journal *journal.Run // with WithStateDir: the crash journal

	guards    []guard.Interceptor // made once: the bulkhead is shared by a module's versions
	observe   guard.Interceptor   // tells the observers of calls; nil without any
	selectors selectorCache
	events    eventHub
	drainWG   sync.WaitGroup

	goroutines goroutineCount // see goroutines.go
	ro         rollouts       // guarded by mu
}

// New returns an empty registry.
func New(opts ...Option) *Registry {
	r := &Registry{cfg: defaultConfig(), failed: map[string]ModuleInfo{}}
	for _, o := range opts {
		o.apply(&r.cfg)
	}
	r.routes.Store(buildTable(nil, nil))
	r.startJournal()
	r.startRollouts()
	r.observe = observing(r.cfg.observers)
	if g := r.cfg.guards; g != nil {
		r.guards = guard.Standard(guard.Config{
			Logger: r.cfg.logger,
			Deadline: guard.DeadlineConfig{
				Default: g.Timeout, Modules: g.ModuleTimeouts, Methods: g.MethodTimeouts,
				Suggested: suggestedTimeout, AbandonLimit: g.AbandonLimit,
				OnPileUp: func(info guard.Info, lingering int64) {
					r.quarantine(info.Stats, lingering)
				},
			},
			Bulkhead: guard.BulkheadConfig{Limit: g.Concurrency},
			Breaker:  guard.BreakerConfig{Consecutive: g.BreakerFailures, CoolDown: g.BreakerCoolDown},
		})
	}
	return r
}

// Invoke calls method on the module that ref names: "name" (its newest
// active version), "name@1.2.3" or "name@^1.2". Errors are *Error values;
// test them with errors.Is and the Err… sentinels.
func (r *Registry) Invoke(ctx context.Context, ref, method string, params map[string]any) (map[string]any, error) {
	for {
		var v *version
		if e := r.routes.Load().lookup(ref); e != nil { // a plain name
			if e.canary != nil {
				if out, err := e.split(ctx, method, params); err != errReroute {
					return out, err
				}
				continue
			}
			v = e.v
		} else {
			var err error
			if v, err = r.route(ref); err != nil {
				return nil, err
			}
		}
		if out, err := v.invoke(ctx, method, params); err != errReroute {
			return out, err
		}
	}
}

// route finds the version for a reference with a version or range.
func (r *Registry) route(ref string) (*version, error) {
	s, err := r.selectors.parse(ref)
	if err != nil {
		return nil, err
	}
	if v := r.routes.Load().pick(s); v != nil {
		return v, nil
	}
	return nil, r.notRoutable(s)
}

// notRoutable explains why no active version matches s.
func (r *Registry) notRoutable(s selector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.notRoutableLocked(s)
}

// notRoutableLocked is notRoutable with r.mu held.
func (r *Registry) notRoutableLocked(s selector) error {
	var known, names []string
	seen := map[string]bool{}
	for _, v := range r.all {
		if !seen[v.name] {
			seen[v.name] = true
			names = append(names, v.name)
		}
		if v.name != s.name {
			continue
		}
		if s.matches(v) {
			msg := fmt.Sprintf("%s is %s", v.ref(), v.state)
			if v.reason != "" {
				msg += ": " + v.reason
			}
			return &sdk.Error{Code: sdk.CodeNotActive, Message: msg}
		}
		if v.state == StateActive {
			known = append(known, v.manifest.Version)
		}
	}
	if len(known) > 0 {
		return sdk.Errorf(sdk.CodeUnknownModule, "no active version of %s matches %q (active: %s)", s.name, s.raw, strings.Join(known, ", "))
	}
	sort.Strings(names)
	loaded := strings.Join(names, ", ")
	if loaded == "" {
		loaded = "none"
	}
	return sdk.Errorf(sdk.CodeUnknownModule, "no module %q is loaded (loaded: %s)", s.name, loaded)
}

// Load loads the artifact at path, validates it and makes it Active. If
// the same path held another version before, that version is replaced: it
// drains in the background and is unloaded. Loading the same bytes again
// from the same path does nothing. On failure whatever served before keeps
// serving, and the failure is recorded (see Modules) and returned.
func (r *Registry) Load(ctx context.Context, path string) (ModuleInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return ModuleInfo{}, sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err)
	}
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	transport, ok := transportOf(abs)
	if !ok {
		return r.failArtifact(abs, "", sdk.Errorf(sdk.CodeIncompatible,
			"%s: unknown kind of artifact: hotmod loads native plugins (.so), WebAssembly modules (.wasm), process modules (.process) and launch files (.process.json)", abs), nil, nil)
	}
	rec := new(stages.Recorder)
	ctx = stages.With(ctx, rec)
	if err := r.checkSize(abs); err != nil {
		return r.failArtifact(abs, transport, err, nil, rec)
	}
	start := time.Now()
	signed, err := r.verifyArtifact(abs) // WithTrustedKeys: before any of its code runs
	if err != nil {
		return r.failArtifact(abs, transport, err, nil, rec)
	}
	if signed != nil {
		rec.Since(stages.Signature, start)
	}
	inst, err := r.open(withVerified(ctx, signed), transport, abs, signed.Bytes())
	if err != nil {
		return r.failArtifact(abs, transport, err, nil, rec)
	}
	if err := admitSigned(signed, inst, transport, abs); err != nil {
		r.release(inst, transport, nil)
		return r.failArtifact(abs, transport, err, nil, rec)
	}
	if cur := r.sameArtifact(abs, inst); cur != nil {
		r.release(inst, transport, nil) // a second instance of what already serves
		return *cur, nil
	}
	return r.admit(ctx, inst, transport, abs)
}

// Register adds a module compiled into the host (transport Builtin). It
// goes through the same lifecycle as a loaded artifact.
func (r *Registry) Register(ctx context.Context, m *sdk.Module) (ModuleInfo, error) {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	if err := m.Validate(); err != nil {
		return ModuleInfo{}, err
	}
	return r.admit(stages.With(ctx, new(stages.Recorder)), newBuiltin(m, r.cfg.logger), Builtin, "")
}

func transportOf(path string) (Transport, bool) {
	if process.IsArtifact(path) {
		return Process, true
	}
	switch filepath.Ext(path) {
	case ".so":
		return Native, true
	case ".wasm":
		return Wasm, true
	}
	return "", false
}

// open loads the artifact at path; data, if not nil, is its bytes as
// already read and checked (native and wasm load those, not the file).
func (r *Registry) open(ctx context.Context, t Transport, path string, data []byte) (instance, error) {
	switch t {
	case Native:
		r.nativeOnce.Do(func() {
			r.native = native.NewLoader(filepath.Join(r.cfg.cacheDir, "native"), r.cfg.logger)
			if r.cfg.stateDir != "" {
				r.native.Gate = journalGate{r}
			}
		})
		inst, err := r.native.LoadBytes(ctx, path, data)
		if err != nil {
			return nil, err
		}
		return inst, nil
	case Process:
		r.processOnce.Do(func() {
			r.process = process.NewLoader(process.Config{
				Logger:   r.cfg.logger,
				Dir:      filepath.Join(r.cfg.cacheDir, "process"),
				PoolSize: r.cfg.processPool,
				Contain:  r.cfg.contain,
				OnFailed: func(inst *process.Instance, err error) { r.failActive(inst, err) },

				MaxSize:       r.cfg.maxArtifactSize,
				AllowCommands: r.cfg.allowCommands,
				CheckCopy:     r.checkCopy(), // WithTrustedKeys
			})
		})
		inst, err := r.process.Load(ctx, path)
		if err != nil {
			return nil, err
		}
		return inst, nil
	case Wasm:
		r.wasmOnce.Do(func() {
			r.wasm, r.wasmErr = wasm.NewLoader(context.Background(), wasm.Config{
				CacheDir:         filepath.Join(r.cfg.cacheDir, "wasm"),
				PoolSize:         r.cfg.wasmPool,
				MemoryLimitPages: r.cfg.wasmMemoryPages,
				Grants:           r.cfg.wasmGrants,
				Tiers:            r.cfg.wasmTiers,
				CacheLimit:       r.cfg.wasmCacheLimit,
				Logger:           r.cfg.logger,
			})
		})
		if r.wasmErr != nil {
			return nil, sdk.Errorf(sdk.CodeIncompatible, "the wasm transport: %v", r.wasmErr)
		}
		inst, err := r.wasm.LoadBytes(ctx, path, data)
		if err != nil {
			return nil, err
		}
		return inst, nil
	}
	return nil, sdk.Errorf(sdk.CodeInternal, "no loader for transport %q", t)
}

// sameArtifact returns the live version already loaded from path with the
// same bytes, if there is one.
func (r *Registry) sameArtifact(path string, inst instance) *ModuleInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.all {
		if v.artifact == path && v.inst.Sum() == inst.Sum() && v.live() {
			delete(r.failed, path)
			info := v.info()
			return &info
		}
	}
	return nil
}

// release closes an instance that will not serve. A native instance is a
// view of the one module its bytes hold in this process for good: when a
// live version has the same bytes (a second copy of a file, or the same
// file again), closing it would run that version's OnClose, so it is left
// alone. self, if not nil, is the version inst was admitted as.
func (r *Registry) release(inst instance, t Transport, self *version) {
	if t == Native {
		r.mu.Lock()
		shared := false
		for _, v := range r.all {
			if v != self && v.transport == Native && v.inst.Sum() == inst.Sum() {
				shared = true
			}
		}
		r.mu.Unlock()
		if shared {
			return
		}
	}
	_ = callHook(inst.Close)
}

// admit takes an opened instance through Loaded → Validated → Active.
func (r *Registry) admit(ctx context.Context, inst instance, t Transport, artifact string) (ModuleInfo, error) {
	man := inst.Manifest()
	rec := stages.From(ctx)
	sv, err := semver.StrictNewVersion(man.Version)
	if err != nil {
		r.release(inst, t, nil)
		return r.failArtifact(artifact, t, sdk.Errorf(sdk.CodeIncompatible,
			"%s@%s: version is not a semantic version such as 1.4.2", man.Name, man.Version), nil, rec)
	}
	v := newVersion(inst, sv, t, artifact, rec)
	v.inflight = r.inflightCounter(v)
	v.goroutines = r.goroutineSampler(t)
	r.transition(v, StateLoaded, nil)

	if err := r.validate(ctx, v); err != nil {
		return r.refuse(v, err)
	}
	if r.guards != nil || r.observe != nil {
		info := guard.Info{Module: v.name, Version: v.manifest.Version, Transport: string(t), Manifest: v.manifest,
			Uninterruptible: uninterruptible(inst)}
		if r.guards != nil {
			v.stats = new(guard.Stats)
			info.Stats = v.stats
		}
		inner := v.inst.Invoke
		if v.inflight != nil { // innermost: an abandoned call counts until it returns
			inner = v.counted
		}
		v.call = guard.Chain(info, inner, append([]guard.Interceptor{r.observe}, r.guards...)...)
	}

	// Activate, or wait for requirements: one snapshot swap routes to v and
	// away from whatever v replaces (the version previously loaded from the
	// same artifact), and to every waiting version v's arrival completes.
	r.mu.Lock()
	if cyc := r.cycle(v); cyc != "" {
		r.mu.Unlock()
		return r.refuse(v, sdk.Errorf(sdk.CodeIncompatible,
			"%s would close a cycle of requirements: %s; modules that require each other cannot be activated in any order — break the cycle (move what both need into a third module)", v.ref(), cyc))
	}
	var drain []*version
	var refused map[*version]error
	for _, o := range r.all { // a version still waiting from the same artifact is stale now
		if artifact != "" && o.artifact == artifact && o != v && o.state == StateValidated {
			r.setState(o, StateDraining, nil)
			drain = append(drain, o)
		}
	}
	if u := unmet(v, r.active(v, nil)); len(u) > 0 {
		r.wait(v, waitingFor(u))
	} else {
		r.setState(v, StateValidated, nil)
		old, err := r.activate(v)
		if err != nil {
			r.publish()
			r.mu.Unlock()
			r.drainEach(drain)
			return r.refuse(v, err)
		}
		if old != nil {
			drain = append(drain, old)
		}
		var replaced []*version
		replaced, refused = r.promote()
		drain = append(drain, replaced...)
	}
	delete(r.failed, artifact)
	if artifact != "" {
		r.dropFailed(artifact)
	}
	r.publish()
	info := v.info()
	r.mu.Unlock()
	r.drainEach(drain)
	for w, err := range refused {
		_, _ = r.refuse(w, err)
	}
	// A transport that supervises its instance may have given up on it
	// while it was being admitted, before failActive could find it.
	if f, ok := inst.(interface{ Failed() error }); ok && f.Failed() != nil {
		r.failActive(inst, f.Failed())
	}
	return info, nil
}

// refuse fails v, Validated but not routed: it is closed and forgotten,
// and the failure recorded against its artifact.
func (r *Registry) refuse(v *version, err error) (ModuleInfo, error) {
	r.release(v.inst, v.transport, v)
	r.transition(v, StateFailed, err)
	r.forget(v)
	return r.failArtifact(v.artifact, v.transport, err, v, v.stages)
}

func (r *Registry) drainEach(vs []*version) {
	for _, v := range vs {
		r.drainInBackground(v)
	}
}

// quarantine fails the version whose guard counters are stats: its calls
// keep timing out and running on.
func (r *Registry) quarantine(stats *guard.Stats, lingering int64) {
	r.mu.Lock()
	var inst instance
	for _, v := range r.all {
		if v.stats == stats {
			inst = v.inst
		}
	}
	r.mu.Unlock()
	if inst != nil {
		what := fmt.Sprintf("%d calls abandoned at their deadline are still running", lingering)
		if lingering == 1 {
			what = "1 call abandoned at its deadline is still running"
		}
		r.failActive(inst, fmt.Errorf("quarantined: %s", what))
	}
}

// failActive takes an Active (or Standby) version out of service because its transport
// gave up on it (a process module that kept crashing, say): it is no longer
// routed, its in-flight calls end, it is closed, and it stays listed as
// Failed with the reason until its artifact changes or goes away.
func (r *Registry) failActive(inst instance, cause error) {
	r.loadMu.Lock()
	r.mu.Lock()
	var v *version
	for _, o := range r.all {
		if o.inst == inst && (o.state == StateActive || o.state == StateStandby) {
			v = o
		}
	}
	if v == nil {
		r.mu.Unlock()
		r.loadMu.Unlock()
		return
	}
	err := sdk.Errorf(sdk.CodeNotActive, "%s failed while active: %v", v.ref(), cause)
	r.setState(v, StateFailed, err) // stays listed until its artifact changes or goes
	r.publish()
	r.mu.Unlock()
	r.loadMu.Unlock()
	r.drainWG.Add(1)
	go func() {
		defer r.drainWG.Done()
		_ = r.waitDrained(context.Background(), v) // Failed already says why
		_ = callHook(v.inst.Close)
	}()
}

// dropFailed forgets versions that failed while active and came from path;
// r.mu must be held.
func (r *Registry) dropFailed(path string) {
	kept := r.all[:0]
	for _, o := range r.all {
		if o.artifact != path || o.state != StateFailed {
			kept = append(kept, o)
		}
	}
	clear(r.all[len(kept):])
	r.all = kept
}

// validate checks v against the loaded set and runs its Init and Check hooks.
func (r *Registry) validate(ctx context.Context, v *version) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return sdk.Errorf(sdk.CodeNotActive, "the registry is closed")
	}
	for _, o := range r.all {
		if o == v || o.name != v.name || !o.semver.Equal(v.semver) || o.state == StateDraining || o.state == StateFailed {
			continue
		}
		from := o.artifact
		if from == "" {
			from = "the host (builtin)"
		}
		r.mu.Unlock()
		if o.artifact == v.artifact {
			return sdk.Errorf(sdk.CodeIncompatible,
				"%s is already loaded from this file with different contents: bump the version (e.g. %s) so the new build can replace it",
				v.ref(), v.semver.IncPatch().String())
		}
		return sdk.Errorf(sdk.CodeIncompatible,
			"%s is already loaded from %s: two artifacts may not hold the same module and version — bump the version or remove one of them",
			v.ref(), from)
	}
	lower, higher := r.neighbours(v)
	r.mu.Unlock()

	at := time.Now()
	if !r.cfg.allowBreaking {
		if err := checkContracts(lower, v, higher); err != nil {
			return err
		}
	}
	if err := parseDeps(v); err != nil {
		return err
	}
	at = v.stages.Since(stages.Validate, at)
	if len(v.deps) > 0 {
		// The module's handle for calling what it requires. Only modules
		// that require something get one: passing it on costs each call a
		// context value.
		ctx = sdk.WithHost(ctx, &peer{r: r, v: v})
	}
	err := callHook(func() error { return v.inst.Init(ctx, r.cfg.moduleConfig[v.name]) })
	at = v.stages.Since(stages.Init, at)
	if err != nil {
		return sdk.Errorf(sdk.CodeIncompatible, "%s: Init failed: %v", v.ref(), err)
	}
	err = callHook(func() error { return v.inst.Check(ctx) })
	v.checked = v.stages.Since(stages.Check, at)
	if err != nil {
		return sdk.Errorf(sdk.CodeIncompatible, "%s: self-check failed: %v", v.ref(), err)
	}
	return nil
}

// neighbours returns the active versions of v's module just below and just
// above v, either of which may be nil; r.mu must be held.
func (r *Registry) neighbours(v *version) (lower, higher *version) {
	for _, o := range r.all {
		if o == v || o.name != v.name || o.state != StateActive {
			continue
		}
		if o.semver.LessThan(v.semver) && (lower == nil || o.semver.GreaterThan(lower.semver)) {
			lower = o
		}
		if o.semver.GreaterThan(v.semver) && (higher == nil || o.semver.LessThan(higher.semver)) {
			higher = o
		}
	}
	return lower, higher
}

// checkContracts refuses v when its schema changes are larger than its
// version bump allows against the active version below it, or when the
// version above it would then break v's callers the same way. Versions are
// compared in version order, so a rollback to an older build is checked as
// the upgrade it undoes.
func checkContracts(lower, v, higher *version) error {
	if lower != nil {
		if _, err := contract.Check(lower.manifest, v.manifest); err != nil {
			return err
		}
	}
	if higher != nil {
		if _, err := contract.Check(v.manifest, higher.manifest); err != nil {
			return err
		}
	}
	return nil
}

// Unload drains and unloads every live version that ref names ("name" names
// them all), active or waiting for requirements. It returns once they are
// unloaded or ctx ends. A version that an active module requires is not
// unloaded (ErrInUse) unless the Force option is given.
func (r *Registry) Unload(ctx context.Context, ref string, opts ...UnloadOption) error {
	s, err := parseRef(ref)
	if err != nil {
		return err
	}
	var c unloadConfig
	for _, o := range opts {
		o.unload(&c)
	}
	gone, err := r.retire(s.matches, nil, c.force)
	if err != nil {
		return err
	}
	if len(gone) == 0 {
		return r.notRoutable(s)
	}
	return r.drainAll(ctx, gone)
}

// unloadArtifact drains and unloads what was loaded from path and forgets a
// failure recorded for it: the file is gone. Modules that required what it
// held go back to waiting.
func (r *Registry) unloadArtifact(path string) {
	gone, _ := r.retire(func(v *version) bool { return v.artifact == path }, func() {
		delete(r.failed, path)
		r.dropFailed(path)
	}, true)
	for _, v := range gone {
		r.drainInBackground(v)
	}
}

func (r *Registry) drainInBackground(v *version) {
	r.drainWG.Add(1)
	go func() {
		defer r.drainWG.Done()
		r.drain(context.Background(), v)
	}()
}

func (r *Registry) drainAll(ctx context.Context, vs []*version) error {
	var errs []error
	for _, v := range vs {
		errs = append(errs, r.drain(ctx, v))
	}
	return errors.Join(errs...)
}

// drain waits for v's in-flight calls (bounded by the drain timeout and ctx),
// closes it and forgets it.
func (r *Registry) drain(ctx context.Context, v *version) error {
	start := time.Now()
	err := r.waitDrained(ctx, v)
	v.stages.Since(stages.Drain, start)
	if cerr := callHook(v.inst.Close); cerr != nil {
		err = errors.Join(err, fmt.Errorf("%s: Close: %w", v.ref(), cerr))
	}
	r.transition(v, StateUnloaded, err)
	r.forget(v)
	return err
}

// retire takes every live version (active, or waiting for requirements)
// that match accepts out of routing, under both locks, in one published
// table, and returns them Draining for the caller to drain. Active modules
// that require one of them make it refuse (ErrInUse), unless force: then
// they go back to waiting. also, if not nil, runs under the same locks.
func (r *Registry) retire(match func(*version) bool, also func(), force bool) ([]*version, error) {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	gone := map[*version]bool{}
	for _, v := range r.all {
		if (v.live() || v.state == StateStandby) && match(v) {
			gone[v] = true
		}
	}
	if err := r.retiring(gone); err != nil && !force {
		return nil, err
	}
	needy, lost := r.dependents(gone)
	if len(needy) > 0 && !force {
		return nil, inUse(gone, needy, lost)
	}
	if also != nil {
		also()
	}
	var out []*version
	for _, v := range r.all {
		if gone[v] {
			r.setState(v, StateDraining, nil)
			out = append(out, v)
		}
	}
	for i, v := range needy {
		r.wait(v, waitingFor([]dep{lost[i]}))
	}
	r.publish()
	return out, nil
}

// waitDrained stops v admitting calls and waits for those in flight,
// bounded by the drain timeout and ctx; the error says how many were still
// running when it gave up.
func (r *Registry) waitDrained(ctx context.Context, v *version) error {
	v.close()
	timer := time.NewTimer(r.cfg.drainTimeout)
	defer timer.Stop()
	select {
	case <-v.drained:
		return nil
	case <-timer.C:
		return sdk.Errorf(sdk.CodeTimeout, "%s: %d calls still running after the drain timeout (%s); unloading anyway", v.ref(), v.inFlight(), r.cfg.drainTimeout)
	case <-ctx.Done():
		return sdk.Errorf(sdk.CodeTimeout, "%s: %d calls still running when the caller gave up; unloading anyway", v.ref(), v.inFlight())
	}
}

// Modules lists every version the registry holds, and every artifact that
// failed to load, sorted by name and newest version first.
func (r *Registry) Modules() []ModuleInfo {
	r.mu.Lock()
	out := make([]ModuleInfo, 0, len(r.all)+len(r.failed))
	for _, v := range r.all {
		out = append(out, v.info())
	}
	t := r.routes.Load()
	for i, v := range r.all {
		m := r.ro.mods[v.name]
		out[i].Route = t.routeOf(v, m != nil && m.pinned)
	}
	for _, f := range r.failed {
		out = append(out, f)
	}
	r.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		if a.Version != b.Version {
			va, ea := semver.NewVersion(a.Version)
			vb, eb := semver.NewVersion(b.Version)
			if ea == nil && eb == nil {
				return va.GreaterThan(vb)
			}
			return a.Version > b.Version
		}
		return a.Artifact < b.Artifact
	})
	return out
}

// Close unloads every module, waiting for in-flight calls (bounded by the
// drain timeout and ctx). The registry accepts no loads afterwards.
func (r *Registry) Close(ctx context.Context) error {
	r.stopGoroutineSampler() // before it can quarantine what Close drains
	r.stopRollouts()
	gone, _ := r.retire(func(*version) bool { return true }, func() { r.closed = true }, true)
	err := r.drainAll(ctx, gone)
	r.drainWG.Wait()
	r.loadMu.Lock() // a Load that got in before Close may still be creating the loader
	w, p := r.wasm, r.process
	r.loadMu.Unlock()
	if p != nil {
		err = errors.Join(err, p.Close())
	}
	if w != nil {
		err = errors.Join(err, w.Close(ctx))
	}
	r.events.close()
	if r.journal != nil {
		err = errors.Join(err, r.journal.Close())
	}
	return err
}

// transition moves v to state to and emits the event.
func (r *Registry) transition(v *version, to State, err error) {
	r.mu.Lock()
	r.setState(v, to, err)
	r.mu.Unlock()
}

// setState changes v's state and emits the event; r.mu must be held. A
// version seen for the first time joins r.all.
func (r *Registry) setState(v *version, to State, err error) { r.change(v, to, err, "") }

// change is setState with the reason a version waits (to is Validated).
func (r *Registry) change(v *version, to State, err error, waiting string) {
	from, now := v.state, time.Now()
	if from == StateNone {
		r.all = append(r.all, v)
	}
	var took []Stage
	switch {
	case to == StateActive && v.reason != "":
		v.stages.Add(stages.Wait, now.Sub(v.since))
	case to == StateActive:
		v.stages.Add(stages.Activate, now.Sub(v.checked))
	}
	if to >= StateActive {
		took = v.stages.Stages() // what it took to get here: activation, failure, unloading
	}
	v.state, v.since, v.reason = to, now, waiting
	if err != nil && to == StateFailed {
		v.reason = err.Error()
	}
	if to == StateDraining || to == StateFailed || to == StateUnloaded {
		r.leaveRollout(v)
	}
	r.emit(Event{Time: v.since, Module: v.name, Version: v.manifest.Version, Transport: v.transport,
		Artifact: v.artifact, From: from, To: to, Err: err, Reason: waiting, Stages: took})
}

// forget drops v from the registry once it is Unloaded or Failed.
func (r *Registry) forget(v *version) {
	r.mu.Lock()
	for i, o := range r.all {
		if o == v {
			r.all = append(r.all[:i], r.all[i+1:]...)
			break
		}
	}
	r.mu.Unlock()
}

// publish swaps in a new routing table; r.mu must be held.
func (r *Registry) publish() { r.routes.Store(buildTable(r.all, r.plainRoutes())) }

// failArtifact records that the artifact at path failed and returns err. v,
// if given, is the version whose manifest was read before the failure.
// rec, if not nil, holds the stages the load went through.
func (r *Registry) failArtifact(path string, t Transport, err error, v *version, rec *stages.Recorder) (ModuleInfo, error) {
	info := ModuleInfo{Transport: t, State: StateFailed, Reason: err.Error(), Artifact: path, Since: time.Now(), Stages: rec.Stages()}
	if v != nil {
		info.Name, info.Version, info.Sum = v.name, v.manifest.Version, v.inst.Sum()
		m := v.manifest
		info.Manifest = &m
	}
	if path == "" {
		return info, err // a builtin: nothing on disk to show
	}
	r.mu.Lock()
	r.failed[path] = info
	if v == nil {
		r.emit(Event{Time: info.Since, Transport: t, Artifact: path, To: StateFailed, Err: err, Stages: info.Stages})
	}
	r.mu.Unlock()
	return info, err
}

// callHook runs a module hook, turning a panic into an error.
func callHook(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = sdk.Errorf(sdk.CodePanic, "panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return f()
}
