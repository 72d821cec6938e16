package sdk

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Handler is one method of a module: it takes the call's params and returns
// its result. Both are maps of value-model values (see CheckValue).
type Handler func(ctx context.Context, params map[string]any) (map[string]any, error)

// Invoker is the contract every loaded module satisfies, on every transport.
type Invoker interface {
	Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error)
}

// Module is a named, versioned set of methods, plus optional lifecycle hooks.
// Build one with New and Handle at package level and export it as the
// variable `Module` (that is the symbol the native loader looks up).
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
	methods  map[string]Handler
	infos    []MethodInfo
	initFn   func(ctx context.Context, config map[string]any) error
	checkFn  func(ctx context.Context) error
	closeFn  func() error
	problems []string
}

// Manifest is what a module says of itself. It comes from the artifact,
// never from a file name.
type Manifest struct {
	Name    string       `json:"name"`
	Version string       `json:"version"`
	Methods []MethodInfo `json:"methods"`
	// SDK is the version of this package the module was built with.
	SDK string `json:"sdk"`
}

// MethodInfo describes one method in a manifest.
type MethodInfo struct {
	Name string `json:"name"`
	Doc  string `json:"doc,omitempty"`
}

// Version is the version of this SDK, recorded in every manifest.
const Version = "0.1.0"

// MethodOption adds details to a method's entry in the manifest.
type MethodOption func(*MethodInfo)

// Doc sets the method's one-line description.
func Doc(text string) MethodOption { return func(m *MethodInfo) { m.Doc = text } }

var (
	nameRE    = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$`)
	methodRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)
	versionRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// New starts a module with a name (lower case letters, digits, '-', '_',
// dot-separated namespaces such as `acme.pricing`) and a semantic version
// ("1.4.2"). Mistakes are reported by Validate, which the host calls.
func New(name, version string) *Module {
	m := &Module{name: name, version: version, methods: map[string]Handler{}}
	if !nameRE.MatchString(name) {
		m.problems = append(m.problems, fmt.Sprintf("module name %q: use lower-case letters, digits, '-' and '_', e.g. \"pricing\" or \"acme.pricing\"", name))
	}
	if !versionRE.MatchString(version) {
		m.problems = append(m.problems, fmt.Sprintf("version %q is not a semantic version such as \"1.4.2\"", version))
	}
	return m
}

// Handle adds a method. It returns m so calls chain.
func (m *Module) Handle(method string, h Handler, opts ...MethodOption) *Module {
	switch {
	case !methodRE.MatchString(method):
		m.problems = append(m.problems, fmt.Sprintf("method name %q: use letters, digits, '_', '.' and '-'", method))
	case h == nil:
		m.problems = append(m.problems, fmt.Sprintf("method %q has a nil handler", method))
	case m.methods[method] != nil:
		m.problems = append(m.problems, fmt.Sprintf("method %q is declared twice", method))
	default:
		info := MethodInfo{Name: method}
		for _, o := range opts {
			o(&info)
		}
		m.methods[method] = h
		m.infos = append(m.infos, info)
	}
	return m
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

// Manifest returns what the module says of itself; methods are sorted by name.
func (m *Module) Manifest() Manifest {
	methods := append([]MethodInfo(nil), m.infos...)
	sort.Slice(methods, func(i, j int) bool { return methods[i].Name < methods[j].Name })
	return Manifest{Name: m.name, Version: m.version, Methods: methods, SDK: Version}
}

// Validate reports every mistake in the module's declaration at once.
func (m *Module) Validate() error {
	problems := m.problems
	if len(m.methods) == 0 && len(problems) == 0 {
		problems = append(problems, "the module declares no methods: add one with Handle")
	}
	if len(problems) == 0 {
		return nil
	}
	return Errorf(CodeIncompatible, "module %s@%s: %s", m.name, m.version, strings.Join(problems, "; "))
}

// Invoke calls a method. An unknown method is an ErrUnknownMethod that lists
// the methods there are.
func (m *Module) Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	h := m.methods[method]
	if h == nil {
		return nil, m.unknownMethod(method)
	}
	return h(ctx, params)
}

func (m *Module) unknownMethod(method string) error {
	names := make([]string, 0, len(m.infos))
	for _, i := range m.infos {
		names = append(names, i.Name)
	}
	sort.Strings(names)
	return Errorf(CodeUnknownMethod, "module %s has no method %q (it has: %s)", m.name, method, strings.Join(names, ", "))
}

// Init runs the OnInit hook, if any.
func (m *Module) Init(ctx context.Context, config map[string]any) error {
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
	return m.checkFn(ctx)
}

// Close runs the OnClose hook, if any.
func (m *Module) Close() error {
	if m.closeFn == nil {
		return nil
	}
	return m.closeFn()
}

// Main is what a module's main function calls. Built as a native plugin, a
// module's main never runs; run as a program, Main says what the module is
// and how to load it, and exits.
func Main(m *Module) {
	man := m.Manifest()
	fmt.Fprintf(os.Stderr, "%s@%s is a hotmod module (methods:", man.Name, man.Version)
	for _, mi := range man.Methods {
		fmt.Fprintf(os.Stderr, " %s", mi.Name)
	}
	fmt.Fprintln(os.Stderr, ").\nBuild it with `hotmod build` and drop the artifact into the directory `hotmod serve` watches.")
	os.Exit(2)
}
