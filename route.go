package hotmod

import (
	"sort"

	"github.com/hotmod/hotmod/internal/rollout"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/sdk"
)

// table is an immutable routing snapshot: for each module, its Active
// versions, newest first, and where a call to its plain name goes. Invoke
// reads it without locks.
type table struct {
	modules map[string][]*version
	plain   map[string]*entry     // where a call to the plain name goes
	few     []entry               // the same, when there are few modules (see lookup)
	caps    map[string][]*version // providers of each capability (see byCapability)
}

// entry is where calls to a module's plain name go: to v, or, during a
// canary, to canary for weight of every Split (rollout.Split) calls. The
// counters are the rollout's, for its health check.
type entry struct {
	v, canary *version
	weight    uint64
	vc, cc    *rollout.Counters
}

// fewModules is how many modules the table scans instead of hashing: for a
// handful of short names, comparing lengths and bytes beats a map lookup.
const fewModules = 8

// lookup returns where a call to the plain module name goes, or nil.
func (t *table) lookup(name string) *entry {
	if t.few != nil {
		for i := range t.few {
			if t.few[i].v.name == name {
				return &t.few[i]
			}
		}
		return nil
	}
	return t.plain[name]
}

// buildTable indexes the Active versions of all. routes overrides where
// plain calls go for the modules it names (a rollout's stable and canary,
// a pin); elsewhere they go to the newest Active version.
func buildTable(all []*version, routes map[string]entry) *table {
	t := &table{modules: map[string][]*version{}, plain: map[string]*entry{}}
	canary := map[*version]bool{}
	for _, e := range routes {
		if e.canary != nil {
			canary[e.canary] = true
		}
	}
	for _, v := range all {
		if v.state == StateActive {
			t.modules[v.name] = append(t.modules[v.name], v)
		}
	}
	for name, vs := range t.modules {
		sort.Slice(vs, func(i, j int) bool { return vs[i].semver.GreaterThan(vs[j].semver) })
		e, ok := routes[name]
		if !ok || e.v == nil || e.v.state != StateActive {
			e = entry{v: vs[0]}
			if canary[vs[0]] && len(vs) > 1 {
				e.v = vs[1]
			}
		}
		if e.canary != nil && e.canary.state != StateActive {
			e.canary, e.weight = nil, 0
		}
		t.plain[name] = &e
	}
	t.caps = byCapability(t.modules, canary)
	if len(t.plain) <= fewModules {
		t.few = make([]entry, 0, len(t.plain))
		for _, e := range t.plain {
			t.few = append(t.few, *e)
		}
	}
	return t
}

// selector is a parsed module reference: name, name@1.2.3 or name@<range>.
type selector struct {
	name  string
	exact *semver.Version
	rng   *semver.Constraints
	raw   string
}

func parseRef(ref string) (selector, error) {
	name, want, ok := strings.Cut(ref, "@")
	s := selector{name: name, raw: ref}
	if name == "" {
		return s, sdk.Errorf(sdk.CodeUnknownModule, "empty module name in %q: use name, name@1.2.3 or name@^1.2", ref)
	}
	if !ok {
		return s, nil
	}
	if v, err := semver.StrictNewVersion(want); err == nil {
		s.exact = v
		return s, nil
	}
	c, err := semver.NewConstraint(want)
	if err != nil {
		return s, sdk.Errorf(sdk.CodeUnknownModule, "%q: %q is neither a version (1.2.3) nor a range (^1.2, ~1.2.3, >=1.0 <2): %v", ref, want, err)
	}
	s.rng = c
	return s, nil
}

func (s selector) matches(v *version) bool {
	switch {
	case v.name != s.name:
		return false
	case s.exact != nil:
		return v.semver.Equal(s.exact)
	case s.rng != nil:
		return s.rng.Check(v.semver)
	}
	return true
}

// pick returns the newest active version the selector matches, or nil.
func (t *table) pick(s selector) *version {
	for _, v := range t.modules[s.name] {
		if s.matches(v) {
			return v
		}
	}
	return nil
}

// selectorCache keeps parsed references, so that routing by version or
// range does not parse a semver constraint on every call. It holds at most
// maxCachedSelectors entries: references come from callers (the HTTP API
// among them), and an unbounded cache would be theirs to fill.
type selectorCache struct {
	m sync.Map // ref → selector
	n atomic.Int64
}

const maxCachedSelectors = 1024

func (c *selectorCache) parse(ref string) (selector, error) {
	if s, ok := c.m.Load(ref); ok {
		return s.(selector), nil
	}
	s, err := parseRef(ref)
	if err == nil && c.n.Add(1) <= maxCachedSelectors {
		c.m.Store(ref, s)
	}
	return s, err
}
