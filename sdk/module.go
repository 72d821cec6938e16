package sdk

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// Handler is one method of a module: it takes the call's params and returns
// its result. Both are maps of value-model values (see CheckValue).
type Handler func(ctx context.Context, params map[string]any) (map[string]any, error)

// Invoker is the contract every loaded module satisfies, on every transport.
type Invoker interface {
	Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error)
}

// Module is a named, versioned set of methods, plus optional lifecycle hooks.
// Build one with New, then Method (typed methods, see Func) and Handle
// (dynamic ones) at package level, and export it as the variable `Module`
// (that is the symbol the native loader looks up).
//
// The lifecycle, as the host drives it:
//
//  1. The artifact is loaded and its manifest read (state Loaded).
//  2. Init runs with the host's configuration for the module, then Check,
//     the module's self-test (state Validated). A failure ends here: the
//     version is Failed and Close runs.
//  3. The version is routed (state Active).
//  4. When replaced or removed it stops receiving new calls and its in-flight
//     calls finish (state Draining).
//  5. Close runs (state Unloaded). Close must be safe after a failed Init.
//
// A Module is read-only once the host has it; its methods must be safe for
// concurrent use.
type Module struct {
	name     string
	version  string
	methods  map[string]*method
	infos    []MethodInfo // in declaration order
	initFn   func(ctx context.Context, config map[string]any) error
	checkFn  func(ctx context.Context) error
	closeFn  func() error
	needs    []string      // sorted, no duplicates
	requires []Requirement // sorted by target
	provides []Provided    // sorted by capability
	problems []string

	host atomic.Pointer[Host] // the handle Init's context carried, if any
}

// method is one method of a module.
type method struct {
	handler Handler        // the map entry point: every method has one
	raw     rawHandler     // the CBOR entry point of a typed method; nil for a dynamic one
	into    rawIntoHandler // raw, appending to a buffer; nil for a dynamic method
}

// Manifest is what a module says of itself. It comes from the artifact,
// never from a file name. ParseManifest reads the JSON form of one.
type Manifest struct {
	Name    string       `json:"name"`
	Version string       `json:"version"`
	Methods []MethodInfo `json:"methods"`
	// SDK is the version of this package the module was built with.
	SDK string `json:"sdk"`
	// Fingerprint identifies the module's contract: its name and its
	// methods' names and schemas, not the version, the SDK or the docs. Two
	// manifests with the same fingerprint accept and return the same values.
	// It is the sha256 (hex) of the CBOR core deterministic encoding (RFC
	// 8949 §4.2.1) of {"name": module name, "methods": {method name: method
	// fingerprint, …}}.
	Fingerprint string `json:"fingerprint"`
	// Needs lists the capabilities the module asks its host for (see
	// Module.Needs), sorted; empty when it asks for none.
	Needs []string `json:"needs,omitempty"`
	// Requires lists the modules and capabilities the module needs (see
	// Module.Requires), sorted by target; Provides the capabilities it
	// provides (see Module.Provides), sorted by name. Neither is part of
	// the fingerprint: they say how modules fit together, not what a
	// method accepts and returns.
	Requires []Requirement `json:"requires,omitempty"`
	Provides []Provided    `json:"provides,omitempty"`
}

// MethodInfo describes one method in a manifest.
type MethodInfo struct {
	Name string `json:"name"`
	Doc  string `json:"doc,omitempty"`
	// Params and Result are the method's schemas: objects for a typed
	// method (see Func), the open DynamicSchema for a dynamic one (see
	// Module.Handle).
	Params *Schema `json:"params"`
	Result *Schema `json:"result"`
	// Fingerprint identifies the params and result schemas: the sha256
	// (hex) of the CBOR core deterministic encoding of {"params": P,
	// "result": R}, where P and R are the schemas' canonical forms: maps
	// with only the keys that carry information (type; nullable when true;
	// items; fields in id order, each with name, id, required when true,
	// default when set, aliases when any, and its schema's keys).
	Fingerprint string `json:"fingerprint"`
	// Timeout is the deadline the module suggests for a call of the
	// method, as a Go duration ("250ms"); empty for none. A host's own
	// configuration for the method or module comes first. Not part of the
	// fingerprint.
	Timeout string `json:"timeout,omitempty"`
}

// Version is the version of this SDK, recorded in every manifest.
const Version = "0.2.0"

// MethodOption adds details to a method's entry in the manifest.
type MethodOption func(*MethodInfo)

// Doc sets the method's one-line description.
func Doc(text string) MethodOption { return func(m *MethodInfo) { m.Doc = text } }

// Timeout suggests a deadline for calls of the method (see
// MethodInfo.Timeout); d must be positive.
func Timeout(d time.Duration) MethodOption {
	return func(m *MethodInfo) {
		if d > 0 {
			m.Timeout = d.String()
		}
	}
}

// New starts a module with a name (lower case letters, digits, '-', '_',
// dot-separated namespaces such as `acme.pricing`) and a semantic version
// ("1.4.2"). Mistakes are reported by Validate, which the host calls.
func New(name, version string) *Module {
	m := &Module{name: name, version: version, methods: map[string]*method{}}
	if !nameRE.MatchString(name) {
		m.problems = append(m.problems, fmt.Sprintf("module name %q: use lower-case letters, digits, '-' and '_', e.g. \"pricing\" or \"acme.pricing\"", name))
	}
	if !versionRE.MatchString(version) {
		m.problems = append(m.problems, fmt.Sprintf("version %q is not a semantic version such as \"1.4.2\"", version))
	}
	declared.CompareAndSwap(nil, m)
	return m
}

// Handle adds a dynamic method: h gets the params map as the caller sent
// it and checks it itself (see Int, Float and String). Its schema in the
// manifest is the open DynamicSchema. For a method with declared params and
// result types, see Method and Func. It returns m so calls chain.
func (m *Module) Handle(name string, h Handler, opts ...MethodOption) *Module {
	if h == nil {
		m.problems = append(m.problems, fmt.Sprintf("method %q has a nil handler", name))
		return m
	}
	return m.add(name, &method{handler: h}, DynamicSchema(), DynamicSchema(), opts)
}

// Method adds a typed method made by Func:
//
//	sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote, sdk.Doc("prices an order")))
//
// A mistake in the method's types or tags is reported by Validate. It
// returns m so calls chain.
func (m *Module) Method(d MethodDef) *Module {
	switch {
	case d.err != nil:
		m.problems = append(m.problems, fmt.Sprintf("method %q: %v", d.name, d.err))
		return m
	case d.handler == nil:
		m.problems = append(m.problems, fmt.Sprintf("method %q: an empty MethodDef: make one with sdk.Func", d.name))
		return m
	}
	return m.add(d.name, &method{handler: d.handler, raw: d.raw, into: d.into}, d.params, d.result, d.opts)
}

func (m *Module) add(name string, h *method, params, result *Schema, opts []MethodOption) *Module {
	switch {
	case !methodRE.MatchString(name):
		m.problems = append(m.problems, fmt.Sprintf("method name %q: use letters, digits, '_', '.' and '-'", name))
	case m.methods[name] != nil:
		m.problems = append(m.problems, fmt.Sprintf("method %q is declared twice", name))
	default:
		info := MethodInfo{Name: name}
		for _, o := range opts {
			o(&info)
		}
		// The name and schemas are the method's own, whatever an option did.
		info.Name = name
		info.Params, info.Result = params.Clone(), result.Clone()
		info.Fingerprint = methodFingerprint(info.Params, info.Result)
		m.methods[name] = h
		m.infos = append(m.infos, info)
	}
	return m
}

// The capabilities a module may ask for with Needs. A sandboxing transport
// (wasm) gives a module none of them unless it asks and the host's
// configuration grants them; a module that asks for one the host does not
// grant is refused at load, with the reason. The native transport runs
// modules with the host's full authority, so there Needs only documents.
const (
	NeedClock = "clock" // the real time of day (the wall clock): given by default, unless the host denies it
	NeedEnv   = "env"   // environment variables the host chooses to pass
	NeedFS    = "fs"    // a directory the host chooses, as the module's root
	NeedNet   = "net"   // the network
)

// Needs declares capabilities the module asks its host for: NeedClock,
// NeedEnv, NeedFS, NeedNet (a host refuses names it does not know). They go
// into the manifest. It returns m so calls chain.
func (m *Module) Needs(caps ...string) *Module {
	for _, c := range caps {
		switch {
		case !needRE.MatchString(c):
			m.problems = append(m.problems, fmt.Sprintf("Needs(%q): a capability is a lower-case word such as %q", c, NeedFS))
		case containsString(m.needs, c):
		default:
			m.needs = append(m.needs, c)
		}
	}
	sort.Strings(m.needs)
	return m
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// OnInit sets the hook that runs once after loading, with the host's
// configuration for this module (nil when there is none).
func (m *Module) OnInit(f func(ctx context.Context, config map[string]any) error) *Module {
	m.initFn = f
	return m
}

// OnCheck sets the self-test the host runs before routing calls to the module.
func (m *Module) OnCheck(f func(ctx context.Context) error) *Module {
	m.checkFn = f
	return m
}

// OnClose sets the hook that runs when the version is unloaded or fails to
// load. It must be safe to call after a failed or skipped Init.
func (m *Module) OnClose(f func() error) *Module {
	m.closeFn = f
	return m
}

// Name returns the module's name.
func (m *Module) Name() string { return m.name }

// Version returns the module's version.
func (m *Module) Version() string { return m.version }

// Manifest returns what the module says of itself; methods are sorted by
// name. It is a copy: changing it changes nothing in the module.
func (m *Module) Manifest() Manifest {
	methods := make([]MethodInfo, len(m.infos))
	for i, mi := range m.infos {
		mi.Params, mi.Result = mi.Params.Clone(), mi.Result.Clone()
		methods[i] = mi
	}
	sort.Slice(methods, func(i, j int) bool { return methods[i].Name < methods[j].Name })
	man := Manifest{Name: m.name, Version: m.version, Methods: methods, SDK: Version}
	man.Fingerprint = manifestFingerprint(man)
	if len(m.needs) > 0 {
		man.Needs = append([]string(nil), m.needs...)
	}
	if len(m.requires) > 0 {
		man.Requires = append([]Requirement(nil), m.requires...)
	}
	if len(m.provides) > 0 {
		man.Provides = append([]Provided(nil), m.provides...)
	}
	return man
}

// Validate reports every mistake in the module's declaration at once.
func (m *Module) Validate() error {
	problems := m.problems
	if len(m.methods) == 0 && len(problems) == 0 {
		problems = append(problems, "the module declares no methods: add one with Method or Handle")
	}
	if len(problems) == 0 {
		return nil
	}
	return Errorf(CodeIncompatible, "module %s@%s: %s", m.name, m.version, strings.Join(problems, "; "))
}

// Invoke calls a method with a params map: the native transport's entry
// point. A typed method decodes the map into its In struct first (see Func).
// An unknown method is an ErrUnknownMethod that lists the methods there are.
// A dynamic method's result is checked as the byte transports' encoding
// checks it: a value outside the value model (a time.Time, an []int) is a
// module_error that names its path and Go type, on every transport.
func (m *Module) Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	h := m.methods[method]
	if h == nil {
		return nil, m.unknownMethod(method)
	}
	if h.raw != nil { // typed: its result is encoded by its plan, in the model by construction
		return h.handler(m.callContext(ctx), params)
	}
	out, err := h.handler(m.callContext(ctx), params)
	if err != nil {
		return out, err
	}
	if err := CheckParams(out); err != nil {
		return nil, resultError(method, err)
	}
	return out, nil
}

// InvokeCBOR calls a method with CBOR params (a map; empty params are an
// empty map) and returns its result as CBOR: the entry point of the byte
// transports. A typed method decodes the params straight into its In struct
// and encodes its Out straight to CBOR; a dynamic method gets the params
// decoded into a map and its result encoded from one. Params that are not
// CBOR of the value model are a bad_params error.
func (m *Module) InvokeCBOR(ctx context.Context, method string, params []byte) ([]byte, error) {
	h := m.methods[method]
	if h == nil {
		return nil, m.unknownMethod(method)
	}
	return m.invokeCBOR(ctx, h, method, params, nil)
}

// invokeCBOR is InvokeCBOR once the method is found. The result is
// appended to dst; a nil dst makes a new buffer.
func (m *Module) invokeCBOR(ctx context.Context, h *method, name string, params, dst []byte) ([]byte, error) {
	ctx = m.callContext(ctx)
	if h.raw != nil {
		if dst == nil {
			return h.raw(ctx, params)
		}
		return h.into(ctx, params, dst)
	}
	var in map[string]any
	if len(params) > 0 {
		var err error
		if in, err = cbor.UnmarshalMap(params); err != nil {
			return nil, Errorf(CodeBadParams, "params are %s", cborProblem(err))
		}
	} else {
		in = map[string]any{}
	}
	out, err := h.handler(ctx, in)
	if err != nil {
		return nil, err
	}
	var b []byte
	if dst == nil {
		b, err = cbor.Marshal(out)
	} else {
		b, err = cbor.Append(dst, out)
	}
	if err != nil {
		if cerr := CheckParams(out); cerr != nil {
			err = cerr // the words Invoke uses: the same error on every transport
		}
		return nil, resultError(name, err)
	}
	return b, nil
}

func (m *Module) unknownMethod(method string) error {
	names := make([]string, 0, len(m.infos))
	for _, i := range m.infos {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return Errorf(CodeUnknownMethod, "module %s has no method %q (it has: %s)", m.name, method, strings.Join(names, ", "))
}

// Init runs the OnInit hook, if any. A host passes its handle for the
// module in ctx (see WithHost); the module keeps it for Call.
func (m *Module) Init(ctx context.Context, config map[string]any) error {
	m.bindHost(ctx)
	if m.initFn == nil {
		return nil
	}
	return m.initFn(ctx, config)
}

// Check runs the OnCheck hook, if any.
func (m *Module) Check(ctx context.Context) error {
	if m.checkFn == nil {
		return nil
	}
	return m.checkFn(m.callContext(ctx))
}

// Close runs the OnClose hook, if any.
func (m *Module) Close() error {
	if m.closeFn == nil {
		return nil
	}
	return m.closeFn()
}
