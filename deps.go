package hotmod

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
)

// Dependencies between modules.
//
// A manifest lists what the module requires — modules by name, or
// capabilities whatever module provides them, each within a semver range —
// and the capabilities it provides. The registry:
//
//   - keeps a version whose requirements are not all met by active versions
//     Validated, with the reason ("waiting for geo ^1.2"), and activates it
//     as soon as they are; so activation follows dependency order whatever
//     order artifacts arrive in;
//   - refuses a version that would close a cycle of requirements among the
//     live versions, naming it ("a@1.0.0 → b@2.1.0 → a");
//   - refuses to unload a version that an active module needs, unless forced
//     (then the modules that needed it go back to waiting); a file removed
//     from a watched directory is such a forced unload;
//   - refuses a swap (a new version replacing the one its artifact held)
//     whose new version no longer meets a range some active module requires;
//   - gives a module that requires anything a handle (sdk.Host) at Init,
//     through which it calls what it declared, and only that. A chain of
//     such calls carries the first caller's context (its deadline) and stops
//     at the depth limit (WithCallDepth).
//
// A module may require itself: that lets it call itself through the host,
// and is neither a cycle nor anything to wait for when it is in range.

// DefaultCallDepth is how many module-to-module hops a call chain may make.
const DefaultCallDepth = 8

// dep is one parsed requirement.
type dep struct {
	sdk.Requirement
	rng *semver.Constraints
}

// capability is one parsed provided capability.
type capability struct {
	name string
	ver  *semver.Version
}

// parseDeps reads v's requirements and capabilities from its manifest.
func parseDeps(v *version) error {
	for _, rq := range v.manifest.Requires {
		c, err := semver.NewConstraint(rq.Range)
		if err != nil {
			return sdk.Errorf(sdk.CodeIncompatible, "%s requires %s: %q is not a version range such as ^1.2, ~1.2.3 or >=1.0 <2: %v",
				v.ref(), rq.Target(), rq.Range, err)
		}
		v.deps = append(v.deps, dep{rq, c})
	}
	for _, p := range v.manifest.Provides {
		sv, err := semver.StrictNewVersion(p.Version)
		if err != nil {
			return sdk.Errorf(sdk.CodeIncompatible, "%s provides %s at %q: not a semantic version such as 1.3.0", v.ref(), p.Capability, p.Version)
		}
		v.caps = append(v.caps, capability{p.Capability, sv})
	}
	return nil
}

// capVersion is v's version of the capability name, or nil.
func (v *version) capVersion(name string) *semver.Version {
	for _, c := range v.caps {
		if c.name == name {
			return c.ver
		}
	}
	return nil
}

// satisfies reports whether v meets the requirement d.
func (v *version) satisfies(d dep) bool {
	if d.Module != "" {
		return v.name == d.Module && d.rng.Check(v.semver)
	}
	cv := v.capVersion(d.Capability)
	return cv != nil && d.rng.Check(cv)
}

// self reports whether d is v's requirement on its own module.
func (v *version) self(d dep) bool { return d.Module == v.name }

// declared returns v's requirement on target (a module or capability name).
func (v *version) declared(target string) (dep, bool) {
	for _, d := range v.deps {
		if d.Target() == target {
			return d, true
		}
	}
	return dep{}, false
}

func (v *version) live() bool { return v.state == StateActive || v.state == StateValidated }

// active returns the Active versions that meet requirements (a canary
// does not: its stable does), less drop, plus add; r.mu must be held.
func (r *Registry) active(add *version, drop map[*version]bool) []*version {
	var out []*version
	for _, o := range r.all {
		if o.state == StateActive && !drop[o] && o != add && !r.isCanary(o) {
			out = append(out, o)
		}
	}
	if add != nil {
		out = append(out, add)
	}
	return out
}

// unmet returns v's requirements that no version in active meets.
func unmet(v *version, active []*version) []dep {
	var out []dep
	for _, d := range v.deps {
		met := false
		for _, o := range active {
			if o.satisfies(d) {
				met = true
				break
			}
		}
		if !met {
			out = append(out, d)
		}
	}
	return out
}

func describe(d dep) string {
	if d.Capability != "" {
		return "capability " + d.String()
	}
	return d.String()
}

func waitingFor(ds []dep) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = describe(d)
	}
	return "waiting for " + strings.Join(parts, ", ")
}

// cycle returns the cycle of requirements v would close among the live
// versions ("a@1.0.0 → b@2.1.0 → a"), or "". r.mu must be held.
func (r *Registry) cycle(v *version) string {
	live := []*version{v}
	for _, o := range r.all {
		if o != v && o.live() {
			live = append(live, o)
		}
	}
	seen := map[*version]bool{}
	var path []*version
	var walk func(x *version) bool
	walk = func(x *version) bool {
		path = append(path, x)
		for _, d := range x.deps {
			if x.self(d) {
				continue
			}
			for _, y := range live {
				if y == x || !y.satisfies(d) {
					continue
				}
				if y == v {
					return true
				}
				if !seen[y] {
					seen[y] = true
					if walk(y) {
						return true
					}
				}
			}
		}
		path = path[:len(path)-1]
		return false
	}
	if !walk(v) {
		return ""
	}
	var b strings.Builder
	for _, x := range path {
		b.WriteString(x.ref())
		b.WriteString(" → ")
	}
	b.WriteString(v.name)
	return b.String()
}

// breaks returns the first active module (other than old) whose
// requirements the active set meets now but would not once v replaced old,
// with the requirement; r.mu must be held.
func (r *Registry) breaks(v, old *version) (*version, dep, bool) {
	now := r.active(nil, nil)
	after := r.active(v, map[*version]bool{old: true})
	for _, d := range now {
		if d == old || len(d.deps) == 0 || len(unmet(d, now)) > 0 {
			continue
		}
		if lost := unmet(d, after); len(lost) > 0 {
			return d, lost[0], true
		}
	}
	return nil, dep{}, false
}

// dependents returns the active versions, outside gone, that would lose a
// requirement if gone left, and those that would in turn lose one because
// of them, each with the first requirement it loses; r.mu must be held.
func (r *Registry) dependents(gone map[*version]bool) ([]*version, []dep) {
	out := map[*version]bool{}
	for k := range gone {
		out[k] = true
	}
	var vs []*version
	var lost []dep
	now := r.active(nil, nil)
	for changed := true; changed; {
		changed = false
		left := r.active(nil, out)
		for _, d := range left {
			if u := unmet(d, left); len(u) > 0 && len(unmet(d, now)) == 0 {
				out[d] = true
				vs, lost = append(vs, d), append(lost, u[0])
				changed = true
				break
			}
		}
	}
	return vs, lost
}

// activate routes v, in place of the active version its artifact held
// (returned, Draining, for the caller to drain), after checking that the
// switch keeps every active module's requirements met and v's contract
// fits its neighbours'. Under a canary or manual rollout policy v becomes
// a canary or Standby instead, and what it replaces keeps serving (see
// rollout.go). r.mu must be held; the caller publishes.
func (r *Registry) activate(v *version) (*version, error) {
	var old *version
	for _, o := range r.all {
		if v.artifact != "" && o.artifact == v.artifact && o != v && o.state == StateActive {
			old = o
		}
	}
	a, err := r.arrive(v, old)
	if err != nil {
		return nil, err
	}
	if a.replaces != nil {
		if d, lost, broken := r.breaks(v, a.replaces); broken {
			return nil, sdk.Errorf(sdk.CodeIncompatible,
				"%s would replace %s, which %s needs (it requires %s) and %s does not provide: keep %s in a file of its own beside the new one, or update %s first",
				v.ref(), a.replaces.ref(), d.ref(), describe(lost), v.ref(), a.replaces.ref(), d.name)
		}
	}
	if !r.cfg.allowBreaking {
		lower, higher := r.neighbours(v)
		if lower == a.replaces {
			lower = nil // v replaces it; the check at validation covered it
		}
		if err := checkContracts(lower, v, higher); err != nil {
			return nil, err
		}
	}
	return r.arrived(v, old, a), nil
}

// promote activates every waiting version whose requirements are now met,
// until none is left to activate. It returns the versions replaced (to
// drain) and those that cannot be activated, with why (to refuse); r.mu
// must be held.
func (r *Registry) promote() (replaced []*version, refused map[*version]error) {
	refused = map[*version]error{}
	for changed := true; changed; {
		changed = false
		for _, w := range append([]*version(nil), r.all...) {
			if w.state != StateValidated || refused[w] != nil {
				continue
			}
			if u := unmet(w, r.active(w, nil)); len(u) > 0 {
				w.reason = waitingFor(u) // what it waits for may have changed
				continue
			}
			old, err := r.activate(w)
			if err != nil {
				refused[w] = err
				continue
			}
			if old != nil {
				replaced = append(replaced, old)
			}
			changed = true
		}
	}
	return replaced, refused
}

// wait parks v, Validated, with the reason; r.mu must be held.
func (r *Registry) wait(v *version, reason string) {
	r.change(v, StateValidated, nil, reason)
}

// peer is a version's handle on the registry: the sdk.Host its module calls
// other modules through.
type peer struct {
	r *Registry
	v *version
}

func (p *peer) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	d, ok := p.v.declared(target)
	if !ok {
		var have []string
		for _, d := range p.v.deps {
			have = append(have, describe(d))
		}
		return nil, sdk.Errorf(sdk.CodeUndeclared, "%s called %s.%s, which it did not declare: a module calls only what its manifest requires (it requires: %s); add Requires(%q, RANGE) or RequiresCapability(%q, RANGE)",
			p.v.ref(), target, method, strings.Join(have, ", "), target, target)
	}
	if limit := p.r.cfg.callDepth; chain.Depth(ctx) >= limit {
		return nil, sdk.Errorf(sdk.CodeCallDepth, "the chain of module calls %s is deeper than the limit of %d hops (WithCallDepth): is it recursing without end?",
			chain.Path(ctx, p.v.ref()+" → "+target), limit)
	}
	ctx, _ = chain.Push(ctx, p.v.ref())
	ctx = sdk.WithHost(ctx, nil) // the callee acts with its own handle, never the caller's
	for {
		to := p.r.routes.Load().provider(d)
		if to == nil {
			return nil, sdk.Errorf(sdk.CodeNotActive, "%s requires %s, and no active version meets it now", p.v.ref(), describe(d))
		}
		if out, err := to.invoke(ctx, method, params); err != errReroute {
			return out, err
		}
	}
}

// provider returns the version a requirement routes to: the newest active
// version of the module in range, or the active provider of the capability
// with the newest capability version in range (the newest module version
// among equals).
func (t *table) provider(d dep) *version {
	if d.Module != "" {
		if e := t.plain[d.Module]; e != nil && d.rng.Check(e.v.semver) {
			return e.v // stable: what plain calls reach
		}
		for _, v := range t.modules[d.Module] {
			if d.rng.Check(v.semver) {
				return v
			}
		}
		return nil
	}
	for _, v := range t.caps[d.Capability] {
		if d.rng.Check(v.capVersion(d.Capability)) {
			return v
		}
	}
	return nil
}

// byCapability indexes active versions by the capabilities they provide,
// newest capability version first, then newest module version. A canary
// provides nothing: requirements are met by stable.
func byCapability(active map[string][]*version, canary map[*version]bool) map[string][]*version {
	caps := map[string][]*version{}
	for _, vs := range active {
		for _, v := range vs {
			if canary[v] {
				continue
			}
			for _, c := range v.caps {
				caps[c.name] = append(caps[c.name], v)
			}
		}
	}
	for name, vs := range caps {
		sort.Slice(vs, func(i, j int) bool {
			a, b := vs[i].capVersion(name), vs[j].capVersion(name)
			if !a.Equal(b) {
				return a.GreaterThan(b)
			}
			if vs[i].name != vs[j].name {
				return vs[i].name < vs[j].name
			}
			return vs[i].semver.GreaterThan(vs[j].semver)
		})
	}
	return caps
}

// Find returns the active versions that provide capability within rng (a
// semver range such as "^1.2"; "" or "*" for any), the one a module that
// requires it would be routed to first.
func (r *Registry) Find(capability, rng string) ([]ModuleInfo, error) {
	if rng == "" {
		rng = "*"
	}
	c, err := semver.NewConstraint(rng)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeBadParams, "%q is not a version range such as ^1.2, ~1.2.3 or >=1.0 <2: %v", rng, err)
	}
	t := r.routes.Load()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []ModuleInfo
	for _, v := range t.caps[capability] {
		if c.Check(v.capVersion(capability)) {
			out = append(out, v.info())
		}
	}
	return out, nil
}

// UnloadOption changes what Unload does.
type UnloadOption interface{ unload(*unloadConfig) }

type unloadConfig struct{ force bool }

type forceOption struct{}

func (forceOption) unload(c *unloadConfig) { c.force = true }

// Force lets Unload take away a version that active modules require: they
// go back to waiting (Validated) until a version that meets their
// requirement is active again.
func Force() UnloadOption { return forceOption{} }

func inUse(gone map[*version]bool, needy []*version, lost []dep) error {
	var names []string
	for v := range gone {
		names = append(names, v.ref())
	}
	sort.Strings(names)
	what := make([]string, len(needy))
	for i, v := range needy {
		what[i] = fmt.Sprintf("%s (requires %s)", v.ref(), describe(lost[i]))
	}
	return sdk.Errorf(sdk.CodeInUse, "%s is needed by %s: unload %s first, or force the unload (they then wait until what they require is back)",
		strings.Join(names, ", "), strings.Join(what, ", "), needy[0].name)
}

// suggestedTimeout is the deadline m suggests for method (sdk.Timeout), or 0.
func suggestedTimeout(m sdk.Manifest, method string) time.Duration {
	for _, mi := range m.Methods {
		if mi.Name == method && mi.Timeout != "" {
			if d, err := time.ParseDuration(mi.Timeout); err == nil && d > 0 {
				return d
			}
		}
	}
	return 0
}
