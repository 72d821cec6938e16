package sdk

import (
	"context"
	"fmt"
	"sort"
	"sync/atomic"
)

// Requirement is one thing a module needs from other modules: a module by
// name, or a capability whatever module provides it, each within a range of
// versions ("^1.2", ">=1.0.0 <2.0.0", "~2.1", "*"). Exactly one of Module and
// Capability is set. The host activates a module only while every
// requirement is met by an active module, and lets it call only what it
// requires (see Call).
type Requirement struct {
	Module     string `json:"module,omitempty"`
	Capability string `json:"capability,omitempty"`
	Range      string `json:"range"`
}

// Target is the module or capability name the requirement is on.
func (r Requirement) Target() string {
	if r.Module != "" {
		return r.Module
	}
	return r.Capability
}

func (r Requirement) String() string { return r.Target() + " " + r.Range }

// Provided is a capability a module provides, at a version of its own:
// "geocoding 1.3.0". Modules that require the capability reach whichever
// active module provides it within their range.
type Provided struct {
	Capability string `json:"capability"`
	Version    string `json:"version"`
}

// Requires declares that the module needs the module named name at a version
// within rng (e.g. "^1.2"). The host keeps the module waiting (Validated)
// until such a version is active, refuses to unload that version while this
// module needs it, and lets this module call it with Call. A module may
// require itself, to call itself through the host (recursion, or another
// version of itself). It returns m so calls chain.
func (m *Module) Requires(name, rng string) *Module {
	if !nameRE.MatchString(name) {
		m.problems = append(m.problems, fmt.Sprintf("Requires(%q, %q): %q is not a module name such as \"geo\" or \"acme.geo\"", name, rng, name))
		return m
	}
	return m.require(Requirement{Module: name, Range: rng})
}

// RequiresCapability declares that the module needs the capability name,
// provided by any module at a capability version within rng. Call(ctx, name,
// …) reaches the newest active provider. It returns m so calls chain.
func (m *Module) RequiresCapability(name, rng string) *Module {
	if !nameRE.MatchString(name) {
		m.problems = append(m.problems, fmt.Sprintf("RequiresCapability(%q, %q): %q is not a capability name such as \"geocoding\"", name, rng, name))
		return m
	}
	return m.require(Requirement{Capability: name, Range: rng})
}

func (m *Module) require(r Requirement) *Module {
	if !rangeRE.MatchString(r.Range) {
		m.problems = append(m.problems, fmt.Sprintf("requirement %q: %q is not a version range such as \"^1.2\" or \">=1.0.0 <2.0.0\"", r.Target(), r.Range))
		return m
	}
	for _, o := range m.requires {
		if o.Target() == r.Target() {
			m.problems = append(m.problems, fmt.Sprintf("%q is required twice: give one range", r.Target()))
			return m
		}
	}
	m.requires = append(m.requires, r)
	sortRequirements(m.requires)
	return m
}

// Provides declares that the module provides the capability name at version
// (a semantic version of the capability's own contract, e.g. "1.3.0"). It
// returns m so calls chain.
func (m *Module) Provides(name, version string) *Module {
	switch {
	case !nameRE.MatchString(name):
		m.problems = append(m.problems, fmt.Sprintf("Provides(%q, %q): %q is not a capability name such as \"geocoding\"", name, version, name))
	case !versionRE.MatchString(version):
		m.problems = append(m.problems, fmt.Sprintf("Provides(%q, %q): %q is not a semantic version such as \"1.3.0\"", name, version, version))
	default:
		for _, p := range m.provides {
			if p.Capability == name {
				m.problems = append(m.problems, fmt.Sprintf("capability %q is provided twice", name))
				return m
			}
		}
		m.provides = append(m.provides, Provided{Capability: name, Version: version})
		sort.Slice(m.provides, func(i, j int) bool { return m.provides[i].Capability < m.provides[j].Capability })
	}
	return m
}

func sortRequirements(rs []Requirement) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Target() < rs[j].Target() })
}

// Host is what a host offers the modules it loads: calls to other modules.
// Module code does not use it directly; it calls Call.
type Host interface {
	// Invoke calls method on the module or capability target, which the
	// calling module must have declared with Requires or RequiresCapability.
	Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error)
}

type hostKey struct{}

// WithHost returns ctx carrying h. Hosts use it: the context given to a
// module's Init carries the host's handle for that module, and the module
// passes it on to every call's context. A nil h hides whatever handle ctx
// carried (a host calling a module on behalf of another one uses it, so
// the callee cannot act with the caller's handle).
func WithHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, hostKey{}, h)
}

// requestHostKey carries the host of one request in a module that runs in a
// process of its own (see process.go): its calls go back over the pipe,
// tagged with the request they belong to.
type requestHostKey struct{}

func withRequestHost(ctx context.Context, h Host) context.Context {
	return context.WithValue(ctx, requestHostKey{}, h)
}

// HostFrom returns the Host ctx carries, or nil.
func HostFrom(ctx context.Context) Host {
	h, _ := ctx.Value(hostKey{}).(Host)
	return h
}

// guestHost serves Call in a module that runs alone in its own runtime (a
// wasm guest), where there is no per-call context from the host.
var guestHost atomic.Pointer[Host]

// Call calls method on another module, through the host, from inside a
// method (or OnInit, OnCheck) of a module: pass the context the method got.
// target is a module name the caller declared with Requires, or a capability
// it declared with RequiresCapability (the newest active module providing it
// in range answers). The host carries the call's deadline into the callee
// and stops chains deeper than its limit. Calling something not declared is
// an ErrUndeclared error; calling outside a host (a unit test calling a
// method directly) is ErrUndeclared too, unless the test put a Host in ctx
// with WithHost.
func Call(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	h := HostFrom(ctx)
	if h == nil {
		h, _ = ctx.Value(requestHostKey{}).(Host)
	}
	if h == nil {
		if p := guestHost.Load(); p != nil {
			h = *p
		}
	}
	if h == nil {
		return nil, Errorf(CodeUndeclared, "calling %s.%s: no host in this context: a module reaches other modules only while a hotmod host runs it, and only those it declares with Requires or RequiresCapability; pass the context your method got", target, method)
	}
	if params == nil {
		params = map[string]any{}
	}
	return h.Invoke(ctx, target, method, params)
}

// CallAs is Call with typed params and result: in is encoded like the
// params of a typed method (see Func), and the result decoded into Out.
func CallAs[Out, In any](ctx context.Context, target, method string, in In) (Out, error) {
	var out Out
	params, err := Encode(in)
	if err != nil {
		return out, err
	}
	res, err := Call(ctx, target, method, params)
	if err != nil {
		return out, err
	}
	return Decode[Out](res)
}

// Requirements returns what the module requires, sorted by target.
func (m *Module) Requirements() []Requirement { return append([]Requirement(nil), m.requires...) }

// bindHost remembers the host handle Init's context carries, so every call
// the module serves can reach other modules through it.
func (m *Module) bindHost(ctx context.Context) {
	if h := HostFrom(ctx); h != nil {
		m.host.Store(&h)
	}
}

// callContext returns ctx carrying the module's host handle, if it has one
// (in place of any handle ctx carried).
func (m *Module) callContext(ctx context.Context) context.Context {
	if p := m.host.Load(); p != nil {
		return WithHost(ctx, *p)
	}
	return ctx
}
