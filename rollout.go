package hotmod

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/hotmod/hotmod/internal/rollout"
	"github.com/hotmod/hotmod/sdk"
)

// Rollouts: how a new version of a module takes over from the one that
// serves calls to its plain name.
//
//   - immediate (the library's default): at once, as soon as it is active;
//   - canary: it takes a growing share of plain calls, step by step (10 %,
//     50 %, 100 % by default, each held 30 s), while its failures and
//     latency are compared with the stable version's; one clearly worse is
//     rolled back at once (Failed, with the numbers), a healthy one is
//     promoted at the last step;
//   - manual: it waits Standby until Promote.
//
// The version a canary or manual rollout replaces stays Standby (WithStandby)
// so Rollback is a routing change, not a reload. A call with a key
// (WithKey, the HTTP header Hotmod-Key) reaches one version for the whole
// of a step; calls naming a version (name@1.2.3) are never split. Pins,
// rollouts and rolled-back versions are kept in the state directory
// (WithStateDir), so a registry made again resumes where it was.

// RolloutPolicy is how a new version takes over: Immediate, Canary or
// Manual.
type RolloutPolicy = rollout.Policy

// Immediate routes every call to a new version the moment it is active.
func Immediate() RolloutPolicy { return RolloutPolicy{Kind: rollout.Immediate} }

// Manual keeps a new version Standby until Promote.
func Manual() RolloutPolicy { return RolloutPolicy{Kind: rollout.Manual} }

// Canary moves a share of calls to a new version in steps (percentages,
// rising; 100 is added at the end when missing; nil means 10,50,100), each
// held for interval (0 means 30s), checking its health at every step.
func Canary(steps []int, interval time.Duration) (RolloutPolicy, error) {
	return rollout.NewCanary(steps, interval)
}

// ParseRollout reads a policy as `hotmod serve` takes it: "immediate",
// "manual" or "canary" with steps such as "10,50,100".
func ParseRollout(kind, steps string, interval time.Duration) (RolloutPolicy, error) {
	return rollout.Parse(kind, steps, interval)
}

// WithRollout sets the rollout policy: for the modules named, or for every
// module when none is named. The default is Immediate.
func WithRollout(p RolloutPolicy, modules ...string) Option {
	return optionFunc(func(c *config) {
		if len(modules) == 0 {
			c.rollout = p
			return
		}
		if c.moduleRollout == nil {
			c.moduleRollout = map[string]RolloutPolicy{}
		}
		for _, m := range modules {
			c.moduleRollout[m] = p
		}
	})
}

// WithStandby sets how many replaced versions of a module stay Standby, and
// for how long, ready for Rollback. The default is 1 version for 15 minutes
// under a canary or manual policy, none under immediate (the replaced
// version drains and is unloaded, as without rollouts).
func WithStandby(versions int, d time.Duration) Option {
	return optionFunc(func(c *config) { c.keep = &rollout.Keep{Versions: versions, For: d} })
}

type keyContext struct{}

// WithKey gives calls made with ctx a routing key (a user or tenant id,
// say): during a canary all calls with the same key reach the same version.
func WithKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, keyContext{}, key)
}

// RolloutChange is what an EventRollout says.
type RolloutChange struct {
	// Action: "canary" (started), "step", "promoted", "rolled-back",
	// "standby" (a candidate waits), "resumed" (after a restart), "ended"
	// (its stable or canary went away), "pinned", "unpinned".
	Action  string `json:"action"`
	Stable  string `json:"stable,omitempty"`
	Canary  string `json:"canary,omitempty"`
	Percent int    `json:"percent"` // the canary's share of plain calls after the change
	Detail  string `json:"detail,omitempty"`
}

// RolloutStatus is where a module's plain calls go and what comes next.
type RolloutStatus struct {
	Module  string         `json:"module"`
	Policy  string         `json:"policy"`
	Stable  string         `json:"stable,omitempty"` // the version plain calls reach (the rest of them, during a canary)
	Pinned  bool           `json:"pinned,omitempty"`
	Canary  string         `json:"canary,omitempty"`
	Percent int            `json:"percent"`        // the canary's share
	Step    int            `json:"step,omitempty"` // 1-based; 0: no canary step
	Steps   []int          `json:"steps,omitempty"`
	Since   *time.Time     `json:"since,omitempty"` // the step began
	Health  *RolloutHealth `json:"health,omitempty"`
	Standby []string       `json:"standby,omitempty"` // versions ready for Rollback
	Next    string         `json:"next,omitempty"`
}

// RolloutHealth is what the step's calls say of stable and canary.
type RolloutHealth struct {
	Stable, Canary CallStats
}

// CallStats counts one version's calls over a step.
type CallStats struct {
	Calls       int64   `json:"calls"`
	Failures    int64   `json:"failures"`
	FailureRate float64 `json:"failure_rate"`
	P99         string  `json:"p99"` // an upper bound: the estimate's bucket
}

func callStats(s rollout.Sample) CallStats {
	return CallStats{Calls: s.Calls, Failures: s.Failures, FailureRate: s.FailureRate(), P99: s.P99().String()}
}

// rollouts is the registry's rollout state; guarded by Registry.mu.
type rollouts struct {
	mods  map[string]*modRoute
	saved map[string]*savedModule // read from the state directory, until the versions it names arrive
	store *rolloutStore           // nil without a state directory
	stop  chan struct{}
	done  chan struct{}
}

// modRoute is where one module's plain calls go.
type modRoute struct {
	stable *version // nil: the newest Active version
	pinned bool
	run    *rollout.Rollout // in progress, or nil
	canary *version
	vc, cc *rollout.Counters // stable's and canary's during run
	baseV  rollout.Sample    // their counters when the step began
	baseC  rollout.Sample
	gone   []rolledBack // versions rolled back, newest last
	await  *savedModule // restored: the saved canary and Standby versions still to come back
}

// isCanary reports whether v is the canary of a rollout; r.mu must be held.
func (r *Registry) isCanary(v *version) bool {
	m := r.ro.mods[v.name]
	return m != nil && m.canary == v
}

// maxRolledBack is how many rolled-back versions a module remembers.
const maxRolledBack = 16

func (r *Registry) mod(name string) *modRoute {
	if r.ro.mods == nil {
		r.ro.mods = map[string]*modRoute{}
	}
	m := r.ro.mods[name]
	if m == nil {
		m = &modRoute{}
		r.ro.mods[name] = m
	}
	return m
}

func (r *Registry) policyFor(name string) RolloutPolicy {
	if p, ok := r.cfg.moduleRollout[name]; ok {
		return p
	}
	if r.cfg.rollout.Kind == "" {
		return Immediate()
	}
	return r.cfg.rollout
}

func (r *Registry) keepFor(name string) rollout.Keep {
	if r.cfg.keep != nil {
		return *r.cfg.keep
	}
	if r.policyFor(name).Kind == rollout.Immediate {
		return rollout.Keep{}
	}
	return rollout.DefaultKeep
}

// plainRoutes is where plain calls go for the modules with a route of
// their own; r.mu must be held.
func (r *Registry) plainRoutes() map[string]entry {
	out := map[string]entry{}
	for name, m := range r.ro.mods {
		if m.stable == nil && m.canary == nil {
			continue
		}
		e := entry{v: m.stable}
		if e.v == nil {
			e.v = r.newestActive(name, m.canary)
		}
		if m.run != nil && m.canary != nil && m.canary.state == StateActive && m.run.Percent() > 0 && e.v != nil {
			e.canary, e.weight, e.vc, e.cc = m.canary, m.run.Weight(), m.vc, m.cc
		}
		out[name] = e
	}
	return out
}

// newestActive is the newest Active version of name other than except.
func (r *Registry) newestActive(name string, except *version) *version {
	var best *version
	for _, o := range r.all {
		if o.name == name && o != except && o.state == StateActive && (best == nil || o.semver.GreaterThan(best.semver)) {
			best = o
		}
	}
	return best
}

// current is where plain calls to name go now, other than v; r.mu must be
// held.
func (r *Registry) current(name string, v *version) *version {
	m := r.ro.mods[name]
	if m != nil && m.stable != nil && m.stable != v && m.stable.state == StateActive {
		return m.stable
	}
	var except *version
	if m != nil {
		except = m.canary
	}
	if c := r.newestActive(name, except); c != v {
		return c
	}
	return nil
}

// The ways a version can arrive (see arrive).
const (
	arriveRoute     = iota // it takes plain calls at once (immediate)
	arriveCanary           // it starts a canary
	arriveCandidate        // it waits Standby to be promoted (manual, or the module is pinned)
	arriveStable           // restored: it was stable before the registry was made again
	arriveResume           // restored: it was the canary, and its stable serves
	arriveStandby          // restored: it was Standby
)

type arrival struct {
	kind     int
	replaces *version // checked against dependents' requirements
	policy   RolloutPolicy
	saved    *savedModule
}

// arrive decides how v, validated, arrives: old is the Active version its
// artifact held. r.mu must be held.
func (r *Registry) arrive(v, old *version) (arrival, error) {
	if m := r.ro.mods[v.name]; m != nil {
		for _, g := range m.gone {
			if g.matches(v) {
				return arrival{}, sdk.Errorf(sdk.CodeIncompatible, "%s was rolled back (%s at %s): publish a new version, or load a different build",
					v.ref(), g.Reason, g.Time.UTC().Format(time.RFC3339))
			}
		}
	}
	cur := r.current(v.name, v)
	if s := r.ro.saved[v.name]; s != nil {
		switch {
		case s.Stable.matches(v):
			return arrival{kind: arriveStable, saved: s}, nil
		case s.Run != nil && s.Canary.matches(v):
			if cur != nil && s.Stable.matches(cur) {
				return arrival{kind: arriveResume, replaces: cur, saved: s}, nil
			}
			return arrival{kind: arriveStandby, saved: s}, nil
		}
		if s.hasStandby(v) && cur != nil { // alone, it serves until its stable is back
			return arrival{kind: arriveStandby, saved: s}, nil
		}
	}
	if m := r.ro.mods[v.name]; m != nil && m.await != nil { // its stable is back already
		w := m.await
		if w.Run != nil && w.Canary.matches(v) && cur != nil && cur == m.stable {
			return arrival{kind: arriveResume, replaces: cur, saved: w}, nil
		}
		if w.hasStandby(v) {
			return arrival{kind: arriveStandby, saved: w}, nil
		}
	}
	p := r.policyFor(v.name)
	if m := r.ro.mods[v.name]; m != nil && m.pinned && cur != nil {
		return arrival{kind: arriveCandidate, replaces: cur, policy: p}, nil
	}
	if cur == nil || p.Kind == rollout.Immediate {
		return arrival{kind: arriveRoute, replaces: old, policy: p}, nil
	}
	if p.Kind == rollout.Canary {
		return arrival{kind: arriveCanary, replaces: cur, policy: p}, nil
	}
	return arrival{kind: arriveCandidate, replaces: cur, policy: p}, nil
}

// arrived puts v where a says, and returns a version to drain, if any;
// r.mu must be held.
func (r *Registry) arrived(v, old *version, a arrival) *version {
	r.keep(v)
	var drain *version
	switch a.kind {
	case arriveRoute:
		r.setState(v, StateActive, nil)
		if m := r.ro.mods[v.name]; m != nil && (m.stable != nil || m.run != nil) {
			if m.run != nil {
				r.endRun(m, "replaced by "+v.ref())
			}
			m.stable = v
		}
		if old != nil {
			drain = r.replaced(old)
		}
	case arriveCanary, arriveCandidate:
		m := r.mod(v.name)
		if m.canary != nil { // a newer candidate supersedes the one in progress
			prev := m.canary
			r.endRun(m, "superseded by "+v.ref())
			if prev != old && prev.state != StateDraining {
				r.setState(prev, StateDraining, nil)
				r.drainInBackground(prev)
			}
		}
		if a.kind == arriveCanary {
			r.setState(v, StateActive, nil)
		} else {
			r.change(v, StateStandby, nil, "waits to be promoted")
		}
		p := a.policy
		if a.kind == arriveCandidate {
			p = Manual()
		}
		run := rollout.Start(v.name, a.replaces.manifest.Version, v.manifest.Version, p, time.Now())
		r.startRun(m, a.replaces, v, &run)
		if old != nil && old != a.replaces && old.state == StateActive {
			r.setState(old, StateDraining, nil)
			drain = old
		}
	case arriveStable:
		r.setState(v, StateActive, nil)
		m := r.mod(v.name)
		m.stable, m.pinned = v, a.saved.Pinned
		w := *a.saved // what is still to come back: its canary, its Standby versions
		m.await = &w
		delete(r.ro.saved, v.name)
		r.rolloutEvent(v, m, "resumed", "stable again after a restart")
		for _, o := range append([]*version(nil), r.all...) {
			if o == v || o.name != v.name || (o.state != StateActive && o.state != StateStandby) {
				continue
			}
			switch {
			case a.saved.Run != nil && a.saved.Canary.matches(o):
				r.resume(m, o, a.saved)
			case o.state == StateActive && a.saved.hasStandby(o):
				r.change(o, StateStandby, nil, "")
			}
		}
	case arriveResume:
		r.setState(v, StateStandby, nil)
		m := r.mod(v.name)
		m.stable = a.replaces
		r.resume(m, v, a.saved)
	case arriveStandby:
		reason := ""
		if a.saved.Run != nil && a.saved.Canary.matches(v) {
			reason = fmt.Sprintf("the canary of a rollout: waits for its stable %s@%s to resume", v.name, a.saved.Stable.Version)
		}
		r.change(v, StateStandby, nil, reason)
	}
	r.saveRollouts()
	return drain
}

// resume restarts a saved run with c as its canary, at the saved step; the
// step's hold starts again (its counts were not kept). r.mu must be held.
func (r *Registry) resume(m *modRoute, c *version, s *savedModule) {
	run := *s.Run
	run.Since = time.Now()
	if run.Step >= 0 && c.state != StateActive {
		r.change(c, StateActive, nil, "")
	}
	r.startRun(m, m.stable, c, &run)
	delete(r.ro.saved, c.name)
	if m.await != nil {
		m.await.Run, m.await.Canary = nil, nil
	}
	r.rolloutEvent(c, m, "resumed", fmt.Sprintf("at step %d (%d %%) after a restart", run.Step+1, run.Percent()))
}

// startRun begins run of canary over stable; r.mu must be held.
func (r *Registry) startRun(m *modRoute, stable, canary *version, run *rollout.Rollout) {
	m.stable, m.canary, m.run = stable, canary, run
	if m.await != nil {
		m.await.Run, m.await.Canary = nil, nil // a new run supersedes the saved one
	}
	m.vc, m.cc = new(rollout.Counters), new(rollout.Counters)
	m.baseV, m.baseC = rollout.Sample{}, rollout.Sample{}
	action, detail := "canary", fmt.Sprintf("%s of plain calls (%s)", pctOf(run.Percent()), run.Policy)
	if run.Step < 0 {
		action, detail = "standby", "waits to be promoted"
		if m.pinned {
			detail = fmt.Sprintf("waits to be promoted (%s is pinned to %s)", canary.name, stable.manifest.Version)
		}
	}
	r.rolloutEvent(canary, m, action, detail)
}

// endRun forgets the run in progress: an Active canary stays Active (it
// can still be called by version), a candidate waiting Standby drains.
// r.mu must be held.
func (r *Registry) endRun(m *modRoute, why string) {
	if m.run == nil {
		return
	}
	c := m.canary
	m.run, m.canary, m.vc, m.cc = nil, nil, nil, nil
	if c == nil {
		return
	}
	r.rolloutEvent(c, m, "ended", why)
	if c.state == StateStandby {
		r.setState(c, StateDraining, nil)
		r.drainInBackground(c)
	}
}

func pctOf(p int) string { return fmt.Sprintf("%d %%", p) }

// replaced puts old, which plain calls no longer reach, Standby when the
// module keeps replaced versions, or Draining (returned, for the caller
// to drain); r.mu must be held.
func (r *Registry) replaced(old *version) *version {
	if r.keepFor(old.name).Versions > 0 {
		r.change(old, StateStandby, nil, "")
		return nil
	}
	r.setState(old, StateDraining, nil)
	return old
}

// leaveRollout forgets v's part in its module's route when it stops
// serving (Draining, Failed, Unloaded); r.mu must be held.
func (r *Registry) leaveRollout(v *version) {
	m := r.ro.mods[v.name]
	if m == nil {
		return
	}
	switch v {
	case m.canary:
		r.endRun(m, v.ref()+" stopped serving")
	case m.stable:
		r.endRun(m, "its stable "+v.ref()+" stopped serving")
		m.stable, m.pinned = nil, false
	default:
		return
	}
	r.saveRollouts()
}

// retiring refuses to take away the stable version of a rollout in
// progress; r.mu must be held.
func (r *Registry) retiring(gone map[*version]bool) error {
	for v := range gone {
		if m := r.ro.mods[v.name]; m != nil && m.run != nil && m.stable == v && !gone[m.canary] {
			return sdk.Errorf(sdk.CodeInUse, "%s is the stable version of a rollout in progress (%s at %s): promote or roll back %s first",
				v.ref(), m.canary.ref(), pctOf(m.run.Percent()), v.name)
		}
	}
	return nil
}

// split runs one plain call during a canary: a key's bucket, or a random
// draw, against the canary's weight picks the version, and the call is
// counted for the health check.
func (e *entry) split(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	v, c := e.v, e.vc
	draw := rand.Uint64()
	b := draw % rollout.Split
	if k, ok := ctx.Value(keyContext{}).(string); ok {
		b = rollout.KeyBucket(k)
	}
	if b < e.weight {
		v, c = e.canary, e.cc
	}
	if (draw>>32)%rollout.TimeOneIn != 0 { // most calls are counted, not timed
		out, err := v.invoke(ctx, method, params)
		if err != errReroute {
			c.Count(err != nil && countsAgainst(err))
		}
		return out, err
	}
	start := time.Now()
	out, err := v.invoke(ctx, method, params)
	if err != errReroute {
		c.Record(time.Since(start), err != nil && countsAgainst(err))
	}
	return out, err
}

// countsAgainst says whether a failed call counts against the version: the
// version failed, not the caller (bad_params, unknown_method) nor the host
// (overloaded).
func countsAgainst(err error) bool {
	var e *sdk.Error
	if !errors.As(err, &e) {
		return true
	}
	switch e.Code {
	case sdk.CodePanic, sdk.CodeTimeout, sdk.CodeInternal, sdk.CodeModule, sdk.CodeCircuitOpen:
		return true
	}
	return false
}

// rolloutTick is how often rollouts are checked: often enough to roll a
// bad canary back within a small part of its step (a twentieth, 100ms at
// most), rare enough to cost nothing measurable.
func (r *Registry) rolloutTick() time.Duration {
	tick := 100 * time.Millisecond
	check := func(p RolloutPolicy) {
		if p.Kind == rollout.Canary && p.Interval/20 < tick {
			tick = p.Interval / 20
		}
	}
	check(r.cfg.rollout)
	for _, p := range r.cfg.moduleRollout {
		check(p)
	}
	return max(tick, 5*time.Millisecond)
}

// startRollouts reads the saved state and starts the rollout clock.
func (r *Registry) startRollouts() {
	if r.cfg.stateDir != "" {
		store, saved, err := openRolloutStore(r.cfg.stateDir)
		if err != nil {
			r.cfg.logger.Error("rollout state not read: rollouts, pins and rolled-back versions start empty", "error", err)
		}
		r.ro.store = store
		for name, s := range saved {
			if len(s.RolledBack) > 0 {
				r.mod(name).gone = s.RolledBack
			}
			if s.Stable != nil || s.Run != nil || len(s.Standby) > 0 {
				if r.ro.saved == nil {
					r.ro.saved = map[string]*savedModule{}
				}
				r.ro.saved[name] = s
			}
		}
	}
	stop, done := make(chan struct{}), make(chan struct{})
	r.ro.stop, r.ro.done = stop, done
	go func() {
		defer close(done)
		t := time.NewTicker(r.rolloutTick())
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				r.checkRollouts(now)
			}
		}
	}()
}

func (r *Registry) stopRollouts() {
	r.mu.Lock()
	stop, done := r.ro.stop, r.ro.done
	r.ro.stop = nil
	r.ro.store = nil // what Close unloads is not a routing change to keep
	r.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}

// checkRollouts moves every canary on, rolls bad ones back and lets
// Standby versions past their keep go.
func (r *Registry) checkRollouts(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	changed := false
	for _, m := range r.ro.mods {
		if m.run == nil || m.run.Step < 0 || m.canary == nil {
			continue
		}
		cs, ss := m.cc.Sample().Sub(m.baseC), m.vc.Sample().Sub(m.baseV)
		d := m.run.Next(now, cs, ss, r.cfg.health)
		switch d.Action {
		case rollout.Advance:
			m.run.Advance(now)
			m.baseV, m.baseC = m.vc.Sample(), m.cc.Sample()
			r.rolloutEvent(m.canary, m, "step", fmt.Sprintf("%s: %s", pctOf(m.run.Percent()), d.Reason))
			changed = true
		case rollout.Complete:
			r.complete(m, d.Reason)
			changed = true
		case rollout.RollBack:
			r.rollBack(m, d.Reason)
			changed = true
		}
	}
	if r.sweepStandby(now) {
		changed = true
	}
	if changed {
		r.routeChanged()
	}
}

// sweepStandby drains Standby versions beyond what their module keeps;
// r.mu must be held.
func (r *Registry) sweepStandby(now time.Time) bool {
	byMod := map[string][]*version{}
	for _, v := range r.all {
		if v.state == StateStandby && v.reason == "" {
			if m := r.ro.mods[v.name]; m == nil || m.canary != v {
				byMod[v.name] = append(byMod[v.name], v)
			}
		}
	}
	swept := false
	for name, vs := range byMod {
		keep := r.keepFor(name)
		sort.Slice(vs, func(i, j int) bool { return vs[i].since.After(vs[j].since) })
		for i, v := range vs {
			if i >= keep.Versions || (keep.For > 0 && now.Sub(v.since) > keep.For) {
				r.setState(v, StateDraining, nil)
				r.drainInBackground(v)
				swept = true
			}
		}
	}
	return swept
}

// complete makes the canary stable; stable goes Standby. r.mu must be
// held; the caller publishes.
func (r *Registry) complete(m *modRoute, why string) {
	c, prev := m.canary, m.stable
	if prev != nil && prev.state == StateActive {
		if d, lost, broken := r.breaks(c, prev); broken {
			r.rollBack(m, fmt.Sprintf("not promoted: %s requires %s, which %s does not meet", d.ref(), describe(lost), c.ref()))
			return
		}
	}
	run := *m.run
	m.run, m.canary, m.vc, m.cc = nil, nil, nil, nil
	m.stable = c
	if c.state != StateActive {
		r.change(c, StateActive, nil, "")
	}
	r.rolloutEvent(c, m, "promoted", fmt.Sprintf("from %s: %s", run.Stable, why))
	if prev != nil && prev.state == StateActive {
		if d := r.replaced(prev); d != nil {
			r.drainInBackground(d)
		}
	}
}

// rollBack sends every plain call back to stable and fails the canary with
// why; it stays rolled back, after a restart too. r.mu must be held; the
// caller publishes.
func (r *Registry) rollBack(m *modRoute, why string) {
	c := m.canary
	m.run, m.canary, m.vc, m.cc = nil, nil, nil, nil
	r.forbid(m, c, why)
	r.rolloutEvent(c, m, "rolled-back", why)
	r.failVersion(c, sdk.Errorf(sdk.CodeNotActive, "%s", why))
}

// forbid remembers that v was rolled back; r.mu must be held.
func (r *Registry) forbid(m *modRoute, v *version, why string) {
	m.gone = append(m.gone, rolledBack{versionID: idOf(v), Reason: why, Time: time.Now()})
	if len(m.gone) > maxRolledBack {
		m.gone = m.gone[len(m.gone)-maxRolledBack:]
	}
}

// failVersion takes v out of service, Failed with err: its calls in flight
// finish, then it is closed. r.mu must be held.
func (r *Registry) failVersion(v *version, err error) {
	r.setState(v, StateFailed, err)
	r.drainWG.Add(1)
	go func() {
		defer r.drainWG.Done()
		_ = r.waitDrained(context.Background(), v)
		_ = callHook(v.inst.Close)
	}()
}

func (r *Registry) rolloutEvent(v *version, m *modRoute, action, detail string) {
	ch := &RolloutChange{Action: action, Detail: detail}
	if m.stable != nil {
		ch.Stable = m.stable.manifest.Version
	}
	if m.canary != nil {
		ch.Canary = m.canary.manifest.Version
		if m.run != nil {
			ch.Percent = m.run.Percent()
		}
	}
	r.emit(Event{Kind: EventRollout, Rollout: ch, Time: time.Now(), Module: v.name, Version: v.manifest.Version,
		Transport: v.transport, Artifact: v.artifact, From: v.state, To: v.state})
}

// auditRollout writes the audit log line of a rollout event.
func (r *Registry) auditRollout(e Event) {
	ch := e.Rollout
	level := slog.LevelInfo
	if ch.Action == "rolled-back" {
		level = slog.LevelWarn
	}
	r.cfg.logger.Log(context.Background(), level, "rollout "+ch.Action,
		"module", e.Module, "version", e.Version, "stable", ch.Stable, "canary", ch.Canary,
		"percent", ch.Percent, "detail", ch.Detail)
}

// Operator commands.

// lockedModule runs f with the lifecycle and state locks held, then
// publishes and saves.
func (r *Registry) lockedModule(f func() error) error {
	r.loadMu.Lock()
	defer r.loadMu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return sdk.Errorf(sdk.CodeNotActive, "the registry is closed")
	}
	err := f()
	r.routeChanged()
	return err
}

// routeChanged activates the versions that waited for what a route change
// made stable, publishes and saves; r.mu must be held.
func (r *Registry) routeChanged() {
	replaced, refused := r.promote()
	for _, v := range replaced {
		r.drainInBackground(v)
	}
	if len(refused) > 0 {
		r.drainWG.Add(1)
		go func() { // refuse takes r.mu
			defer r.drainWG.Done()
			for w, err := range refused {
				_, _ = r.refuse(w, err)
			}
		}()
	}
	r.publish()
	r.saveRollouts()
}

// Promote moves module's canary to its next step, or routes every plain
// call to it when the next step is the last (or it waits Standby); the
// version it replaces goes Standby. Without a rollout in progress, the
// newest Standby version newer than what serves starts one under the
// module's policy (a manual or immediate policy promotes it at once).
func (r *Registry) Promote(_ context.Context, module string) (RolloutStatus, error) {
	err := r.lockedModule(func() error {
		m := r.ro.mods[module]
		if err := m.unpinned(module); err != nil {
			return err
		}
		if m != nil && m.run != nil {
			if m.run.Promote(time.Now()) {
				r.complete(m, "promoted by an operator")
				return nil
			}
			m.baseV, m.baseC = m.vc.Sample(), m.cc.Sample()
			r.rolloutEvent(m.canary, m, "step", pctOf(m.run.Percent())+": promoted by an operator")
			return nil
		}
		cur := r.current(module, nil)
		var cand *version
		for _, o := range r.all {
			if o.name == module && o.state == StateStandby && (cur == nil || o.semver.GreaterThan(cur.semver)) &&
				(cand == nil || o.semver.GreaterThan(cand.semver)) {
				cand = o
			}
		}
		if cand == nil {
			return r.nothingTo("promote", module, cur)
		}
		if cur != nil {
			if d, lost, broken := r.breaks(cand, cur); broken {
				return sdk.Errorf(sdk.CodeIncompatible, "%s cannot replace %s: %s requires %s", cand.ref(), cur.ref(), d.ref(), describe(lost))
			}
		}
		m = r.mod(module)
		p := r.policyFor(module)
		if cur == nil || p.Kind != rollout.Canary {
			run := rollout.Start(module, "", cand.manifest.Version, Manual(), time.Now())
			m.stable, m.canary, m.run = cur, cand, &run
			r.complete(m, "promoted by an operator")
			return nil
		}
		r.change(cand, StateActive, nil, "")
		run := rollout.Start(module, cur.manifest.Version, cand.manifest.Version, p, time.Now())
		r.startRun(m, cur, cand, &run)
		return nil
	})
	if err != nil {
		return RolloutStatus{}, err
	}
	return r.RolloutOf(module)
}

// Rollback sends every plain call to module back to the version before:
// during a rollout, to stable (the canary Failed, rolled back); otherwise
// to the newest Standby version, and the version that served is Failed,
// rolled back. A rolled-back version stays so, across restarts with a
// state directory: load a new build to move on.
func (r *Registry) Rollback(_ context.Context, module string) (RolloutStatus, error) {
	err := r.lockedModule(func() error {
		m := r.ro.mods[module]
		if err := m.unpinned(module); err != nil {
			return err
		}
		if m != nil && m.run != nil {
			r.rollBack(m, fmt.Sprintf("rolled back by an operator at %s", pctOf(m.run.Percent())))
			return nil
		}
		cur := r.current(module, nil)
		var prev *version
		for _, o := range r.all {
			if o.name == module && o.state == StateStandby && o != cur && (prev == nil || o.since.After(prev.since)) {
				prev = o
			}
		}
		if prev == nil || cur == nil {
			return r.nothingTo("roll back", module, cur)
		}
		if d, lost, broken := r.breaks(prev, cur); broken {
			return sdk.Errorf(sdk.CodeIncompatible, "%s cannot go back to %s: %s requires %s", cur.ref(), prev.ref(), d.ref(), describe(lost))
		}
		m = r.mod(module)
		r.change(prev, StateActive, nil, "")
		m.stable = prev
		why := fmt.Sprintf("rolled back by an operator to %s", prev.manifest.Version)
		r.forbid(m, cur, why)
		r.rolloutEvent(cur, m, "rolled-back", why)
		r.failVersion(cur, sdk.Errorf(sdk.CodeNotActive, "%s", why))
		return nil
	})
	if err != nil {
		return RolloutStatus{}, err
	}
	return r.RolloutOf(module)
}

// unpinned refuses a routing change to a pinned module.
func (m *modRoute) unpinned(module string) error {
	if m != nil && m.pinned {
		return sdk.Errorf(sdk.CodeInUse, "%s is pinned to %s: unpin it first (hotmod unpin %s)", module, m.stable.manifest.Version, module)
	}
	return nil
}

func (r *Registry) nothingTo(what, module string, cur *version) error {
	if cur == nil {
		return sdk.Errorf(sdk.CodeUnknownModule, "nothing to %s: no version of %q serves plain calls", what, module)
	}
	if what == "promote" {
		return sdk.Errorf(sdk.CodeNotActive, "nothing to promote: %s has no rollout in progress and no Standby version newer than %s", module, cur.manifest.Version)
	}
	return sdk.Errorf(sdk.CodeNotActive, "nothing to roll back to: %s has no rollout in progress and no previous version kept Standby (WithStandby, serve --standby-versions); load the version you want again", module)
}

// Pin routes every plain call to module to the version ref names exactly
// ("pricing@1.2.3"), Active or Standby, until Unpin. New versions that
// arrive meanwhile wait Standby. A module with a rollout in progress cannot
// be pinned: promote or roll it back first.
func (r *Registry) Pin(_ context.Context, ref string) error {
	s, err := parseRef(ref)
	if err != nil {
		return err
	}
	if s.exact == nil {
		return sdk.Errorf(sdk.CodeBadParams, "pin %q: name the exact version, e.g. %s@1.2.3", ref, s.name)
	}
	return r.lockedModule(func() error {
		var v *version
		for _, o := range r.all {
			if s.matches(o) && (o.state == StateActive || o.state == StateStandby) {
				v = o
			}
		}
		if v == nil {
			return r.notRoutableLocked(s)
		}
		m := r.mod(v.name)
		if m.run != nil {
			return sdk.Errorf(sdk.CodeInUse, "%s has a rollout in progress (%s at %s): promote or roll back first", v.name, m.canary.ref(), pctOf(m.run.Percent()))
		}
		if v.state == StateStandby {
			r.change(v, StateActive, nil, "")
		}
		m.stable, m.pinned = v, true
		r.rolloutEvent(v, m, "pinned", "every plain call goes to "+v.manifest.Version)
		return nil
	})
}

// Unpin lets module's plain calls follow its rollout policy again; the
// pinned version keeps serving until a new version takes over.
func (r *Registry) Unpin(_ context.Context, module string) error {
	return r.lockedModule(func() error {
		m := r.ro.mods[module]
		if m == nil || !m.pinned {
			return sdk.Errorf(sdk.CodeNotActive, "%s is not pinned", module)
		}
		m.pinned = false
		r.rolloutEvent(m.stable, m, "unpinned", m.stable.manifest.Version+" serves until a new version takes over")
		return nil
	})
}

// Rollouts says, for every module with a version Active or Standby, where
// its plain calls go and what comes next.
func (r *Registry) Rollouts() []RolloutStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := map[string]bool{}
	for _, v := range r.all {
		if v.state == StateActive || v.state == StateStandby {
			names[v.name] = true
		}
	}
	out := make([]RolloutStatus, 0, len(names))
	for name := range names {
		out = append(out, r.statusOf(name))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}

// RolloutOf is Rollouts for one module.
func (r *Registry) RolloutOf(module string) (RolloutStatus, error) {
	for _, s := range r.Rollouts() {
		if s.Module == module {
			return s, nil
		}
	}
	return RolloutStatus{}, r.notRoutable(selector{name: module, raw: module})
}

// statusOf; r.mu must be held.
func (r *Registry) statusOf(name string) RolloutStatus {
	p := r.policyFor(name)
	s := RolloutStatus{Module: name, Policy: p.String()}
	if cur := r.current(name, nil); cur != nil {
		s.Stable = cur.manifest.Version
	}
	m := r.ro.mods[name]
	if m != nil {
		s.Pinned = m.pinned
		if m.run != nil && m.canary != nil {
			run := m.run
			s.Canary, s.Percent, s.Next = m.canary.manifest.Version, run.Percent(), run.Then()
			if run.Step >= 0 {
				s.Step, s.Steps = run.Step+1, run.Policy.Steps
				since := run.Since
				s.Since = &since
				s.Health = &RolloutHealth{
					Stable: callStats(m.vc.Sample().Sub(m.baseV)),
					Canary: callStats(m.cc.Sample().Sub(m.baseC)),
				}
			}
		}
	}
	for _, v := range r.all {
		if v.name == name && v.state == StateStandby && (m == nil || v != m.canary) {
			s.Standby = append(s.Standby, v.manifest.Version)
		}
	}
	return s
}

// routeOf is the share of plain calls v takes, for ModuleInfo.Route.
func (t *table) routeOf(v *version, pinned bool) string {
	e := t.plain[v.name]
	switch {
	case e == nil:
		return ""
	case e.v == v && pinned:
		return "pinned"
	case e.v == v:
		return pctOf(100 - int(e.weight/100))
	case e.canary == v:
		return pctOf(int(e.weight / 100))
	}
	return ""
}
