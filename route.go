package hotmod

import (
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/Masterminds/semver/v3"
	"github.com/hotmod/hotmod/sdk"
)

// table is an immutable routing snapshot: for each module, its Active
// versions, newest first. Invoke reads it without locks.
type table struct {
	modules map[string][]*version
	newest  map[string]*version   // modules[name][0], for the plain-name fast path
	few     []*version            // the same, when there are few modules (see lookup)
	caps    map[string][]*version // providers of each capability (see byCapability)
}

// fewModules is how many modules the table scans instead of hashing: for a
// handful of short names, comparing lengths and bytes beats a map lookup.
const fewModules = 8

// lookup returns the newest active version of the module name, or nil.
func (t *table) lookup(name string) *version {
	if t.few != nil {
		for _, v := range t.few {
			if v.name == name {
				return v
			}
		}
		return nil
	}
	return t.newest[name]
}

func buildTable(all []*version) *table {
	t := &table{modules: map[string][]*version{}, newest: map[string]*version{}}
	for _, v := range all {
		if v.state == StateActive {
			t.modules[v.name] = append(t.modules[v.name], v)
		}
	}
	for name, vs := range t.modules {
		sort.Slice(vs, func(i, j int) bool { return vs[i].semver.GreaterThan(vs[j].semver) })
		t.newest[name] = vs[0]
	}
	t.caps = byCapability(t.modules)
	if len(t.newest) <= fewModules {
		t.few = make([]*version, 0, len(t.newest))
		for _, v := range t.newest {
			t.few = append(t.few, v)
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
