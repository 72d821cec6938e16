package wasm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/hotmod/hotmod/internal/logcap"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// Config configures a Loader. The zero value is usable.
type Config struct {
	// CacheDir is where compiled code is kept between runs, keyed by the
	// artifact's content (and wazero's version). "" means
	// <user cache dir>/hotmod/wasm.
	CacheDir string
	// PoolSize is how many guests of one version may serve calls at once.
	// 0 means GOMAXPROCS.
	PoolSize int
	// MemoryLimitPages caps each guest's linear memory, in 64 KiB pages.
	// 0 means DefaultMemoryLimitPages.
	MemoryLimitPages uint32
	// Grants are the capabilities this host grants modules that ask for
	// them: "clock", "env=NAME[,NAME…]", "fs=DIR", "fs-ro=DIR", each
	// optionally for one module only ("pricing:clock"). See grants.go.
	Grants []string
	// Tiers chooses each module's isolation tier: "trusted" or
	// "interruptible" for every module, "pricing=trusted" for one (see
	// Tier). Without an entry a module is TierInterruptible.
	Tiers []string
	// CompileWorkers is how many goroutines compile one artifact (wazero's
	// compilation workers) when its code is not in the cache. 0 means
	// GOMAXPROCS: a cold compile took 11 s instead of 16 s with 2 on 2
	// cores (BenchmarkLoad/cold); the version it replaces serves meanwhile.
	CompileWorkers int
	// TrustedCalls bounds the calls into guests of trusted modules that run
	// at once (nested calls aside). Go cannot pre-empt a goroutine that runs
	// a guest compiled without termination checks: each running one holds
	// a P (a GOMAXPROCS slot) until the guest returns, and with all of them
	// held nothing else of the host runs, not even the timer that would
	// abandon them. 0 means GOMAXPROCS-1, at least 1.
	TrustedCalls int
	// CacheLimit bounds the bytes of compiled code kept in CacheDir (both
	// tiers, and entries of other wazero versions): at each load, the
	// least recently loaded entries beyond it are removed, never one a
	// loaded version uses. 0 means DefaultCacheLimit; negative, no limit.
	CacheLimit int64
	// Logger receives load events, discarded guests and what guests write
	// on stdout and stderr. nil means slog.Default().
	Logger *slog.Logger
}

// DefaultMemoryLimitPages is the default cap of a guest's memory: 4096
// pages, 256 MiB.
const DefaultMemoryLimitPages = 4096

// MaxArtifactSize is the largest .wasm file Load reads.
const MaxArtifactSize = 256 << 20

// Loader loads .wasm artifacts into one wazero runtime. Its methods are
// safe for concurrent use; Load takes no lock that calls into loaded
// versions need, so a version keeps serving while its successor compiles.
type Loader struct {
	cfg    Config
	grants []grant
	tiers  []tierRule
	logger *slog.Logger
	// engines has a runtime per tier: interruptible always (every
	// artifact's manifest is read there), trusted when Config.Tiers may
	// give it to a module.
	engines map[Tier]*engine
	cache   *cacheBound

	// ctx is canceled by Close: guests starting in the background stop.
	ctx    context.Context
	cancel context.CancelFunc
	// guests counts the guests of every version that exist (idle, in use
	// or starting); Close waits for none before it closes the runtime, as
	// wazero must not close a module while it runs a host function.
	guests atomic.Int64

	// callers finds the guest behind a call to the host module (call.go):
	// guest module name → *guest, for every guest from its start to its
	// discard. seq numbers the names.
	callers sync.Map
	seq     atomic.Uint64

	// running holds a token per call running in a trusted guest.
	running chan struct{}

	mu        sync.Mutex
	instances map[*Instance]struct{}
	closed    bool
}

// NewLoader checks cfg and starts the runtime: compiled code is cached in
// cfg.CacheDir, calls are interrupted when their context ends, and each
// guest's memory is capped.
func NewLoader(ctx context.Context, cfg Config) (*Loader, error) {
	if cfg.PoolSize <= 0 {
		cfg.PoolSize = runtime.GOMAXPROCS(0)
	}
	if cfg.MemoryLimitPages == 0 {
		cfg.MemoryLimitPages = DefaultMemoryLimitPages
	}
	if cfg.MemoryLimitPages > 65536 {
		return nil, fmt.Errorf("wasm: MemoryLimitPages %d is over 65536 (4 GiB, all a 32-bit memory can address)", cfg.MemoryLimitPages)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	grants, err := parseGrants(cfg.Grants)
	if err != nil {
		return nil, err
	}
	if len(cfg.Tiers) == 0 {
		cfg.Tiers = benchTiers
	}
	tiers, err := parseTiers(cfg.Tiers)
	if err != nil {
		return nil, err
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = DefaultCacheDir()
	}
	if cfg.CacheLimit == 0 {
		cfg.CacheLimit = DefaultCacheLimit
	}
	if cfg.CompileWorkers <= 0 {
		cfg.CompileWorkers = runtime.GOMAXPROCS(0)
	}
	if cfg.TrustedCalls <= 0 {
		cfg.TrustedCalls = max(1, runtime.GOMAXPROCS(0)-1)
	}
	l := &Loader{cfg: cfg, grants: grants, tiers: tiers, logger: cfg.Logger,
		engines: map[Tier]*engine{}, instances: map[*Instance]struct{}{}, running: make(chan struct{}, cfg.TrustedCalls)}
	l.cache = &cacheBound{root: cfg.CacheDir, limit: cfg.CacheLimit, logger: cfg.Logger}
	use := []Tier{TierInterruptible}
	if anyTrusted(tiers) {
		use = append(use, TierTrusted)
	}
	for _, t := range use {
		e, err := l.newEngine(ctx, t)
		if err != nil {
			l.closeEngines()
			return nil, err
		}
		l.engines[t] = e
	}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	return l, nil
}

// DefaultCacheDir is <user cache dir>/hotmod/wasm, or a directory under the
// system's temporary directory when there is no user cache directory.
func DefaultCacheDir() string {
	if dir, err := os.UserCacheDir(); err == nil {
		return filepath.Join(dir, "hotmod", "wasm")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("hotmod-wasm-%d", os.Getuid()))
}

// Load compiles the artifact at path (or takes its compiled code from the
// cache), starts one guest, checks the ABI version, reads and checks the
// manifest, and decides the capabilities the module asked for against the
// grants. Every refusal is an *sdk.Error with code incompatible that says
// why and what to do. See the package documentation for the steps.
func (l *Loader) Load(ctx context.Context, path string) (*Instance, error) {
	return l.LoadBytes(ctx, path, nil)
}

// LoadBytes is Load of data, the artifact's bytes already read from path
// (and checked, say, against a signature): the file is not read again, so
// what is loaded is what was checked. nil data reads path.
func (l *Loader) LoadBytes(ctx context.Context, path string, data []byte) (*Instance, error) {
	start := time.Now()
	// Close interrupts a load: its guest's initialisation could loop.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(l.ctx, cancel)()
	readStart := time.Now()
	data, err := artifactBytes(path, data)
	if err != nil {
		return nil, err
	}
	stages.From(ctx).Since(stages.Read, readStart)
	i, g, err := l.open(ctx, path, data)
	if err != nil {
		return nil, err
	}
	cfg, err := authority(sandbox(), l.grants, i.manifest.Name, i.manifest.Needs)
	if err != nil {
		g.discard()
		i.down()
		i.closeCompiled()
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err)
	}
	i.modCfg = cfg
	restart := len(i.manifest.Needs) > 0 || clockGiven(l.grants, i.manifest.Name) != !anyDenial(l.grants)
	if tierOf(l.tiers, i.manifest.Name) == TierTrusted {
		// The manifest was read in the interruptible runtime, where a
		// guest whose initialisation loops is stopped; the module's own
		// tier serves its calls.
		g.discard()
		i.down()
		if err := i.recompile(ctx, l.engines[TierTrusted], data); err != nil {
			return nil, err
		}
		g, restart = nil, true
	}
	if restart {
		// The first guest ran its package initialisation in the sandbox, to
		// read the manifest; serving guests get what was granted (and the
		// clock, when the first did not have it or must not keep it).
		if g != nil {
			g.discard()
			i.down()
		}
		startAt := time.Now()
		if g, err = i.startGuest(ctx, cfg); err != nil {
			i.closeCompiled()
			return nil, err
		}
		stages.From(ctx).Since(stages.Instantiate, startAt)
	}
	i.idle <- g
	for k := 1; k < i.size; k++ {
		i.slots <- struct{}{}
	}
	if err := l.register(i); err != nil {
		g.discard()
		i.closeCompiled()
		return nil, err
	}
	l.logger.Info("wasm module loaded", append(attrsAny(i.attrs), "path", path, "sum", i.sum[:12],
		"go", i.about.Go, "abi", i.about.ABI, "needs", i.manifest.Needs, "tier", i.eng.tier, "took", time.Since(start))...)
	l.keepCache(i, data)
	return i, nil
}

// open reads, compiles and starts the first guest of the artifact at path
// in the sandbox, and reads what it says of itself. The guest counts as
// live; the instance is not registered. data, if not nil, is the file's
// bytes, already read.
func (l *Loader) open(ctx context.Context, path string, data []byte) (*Instance, *guest, error) {
	if l.isClosed() {
		return nil, nil, sdk.Errorf(sdk.CodeNotActive, "loading %s: the wasm loader is closed", path)
	}
	h := sha256.Sum256(data)
	rec := stages.From(ctx)
	i := &Instance{
		l: l, eng: l.engines[TierInterruptible], path: path, sum: hex.EncodeToString(h[:]),
		size: l.cfg.PoolSize, pages: l.cfg.MemoryLimitPages,
		idle: make(chan *guest, l.cfg.PoolSize), slots: make(chan struct{}, l.cfg.PoolSize),
		done:        make(chan struct{}),
		attrs:       []slog.Attr{slog.String("artifact", filepath.Base(path))},
		outputLimit: logcap.New(logcap.Rate, logcap.Burst),
	}
	compileStart := time.Now()
	var err error
	if i.compiled, err = i.eng.compile(ctx, path, data); err != nil {
		return nil, nil, err
	}
	compileTime := time.Since(compileStart)
	rec.Add(stages.Compile, compileTime)
	if err := checkShape(i.compiled); err != nil {
		i.closeCompiled()
		return nil, nil, sdk.Errorf(sdk.CodeIncompatible, "%s cannot be loaded as a hotmod module: %v", path, err)
	}
	// The guest's answers are bounded like its start: its package
	// initialisation or an export could loop. Close interrupts them.
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	startAt := time.Now()
	g, err := i.startGuest(ctx, firstSandbox(l.grants))
	if err != nil {
		i.closeCompiled()
		return nil, nil, err
	}
	fail := func(err error) (*Instance, *guest, error) {
		g.discard()
		i.down()
		i.closeCompiled()
		return nil, nil, err
	}
	major, minor, err := g.abi(ctx)
	if err != nil {
		return fail(sdk.Errorf(sdk.CodeIncompatible, "%s: asking its ABI version: %v", path, err))
	}
	i.about.ABI = fmt.Sprintf("%d.%d", major, minor)
	if major != abiMajor {
		return fail(sdk.Errorf(sdk.CodeIncompatible,
			"%s speaks hotmod's wasm ABI %d.%d; this host speaks %d.x: build the module with an SDK of this host's generation (or upgrade the host)",
			path, major, minor, abiMajor))
	}
	if err := checkExports(i.compiled); err != nil {
		return fail(sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err))
	}
	if err := i.readAbout(ctx, g); err != nil {
		return fail(sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err))
	}
	if err := i.readManifest(ctx, g); err != nil {
		return fail(sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err))
	}
	rec.Since(stages.Instantiate, startAt)
	i.attrs = []slog.Attr{slog.String("module", i.manifest.Name), slog.String("version", i.manifest.Version)}
	g.stdout.attrs, g.stderr.attrs = i.attrs, i.attrs
	l.logger.Debug("wasm module compiled and started", append(attrsAny(i.attrs), "compile", compileTime, "start", time.Since(startAt))...)
	return i, g, nil
}

// artifactBytes returns data, or the file at path when data is nil, after
// checking its size and its header.
func artifactBytes(path string, data []byte) ([]byte, error) {
	var err error
	if data == nil {
		data, err = readArtifact(path)
	} else if len(data) > MaxArtifactSize {
		err = fmt.Errorf("%s is %d bytes, over the limit of %d", path, len(data), MaxArtifactSize)
	}
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "reading wasm module: %v", err)
	}
	if err := checkHeader(data); err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%s is not a WebAssembly module: %v", path, err)
	}
	return data, nil
}

// compile compiles data in e's runtime, or takes it from e's cache.
func (e *engine) compile(ctx context.Context, path string, data []byte) (wazero.CompiledModule, error) {
	c, err := e.rt.CompileModule(withWorkers(ctx, e.workers), data)
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, sdk.Errorf(sdk.CodeTimeout, "compiling %s: %v", path, ctx.Err())
	}
	hint := ""
	if strings.Contains(err.Error(), "EOF") {
		hint = " (the file is truncated)"
	}
	return nil, sdk.Errorf(sdk.CodeIncompatible, "%s is not a valid WebAssembly module%s: %v", path, hint, err)
}

// recompile moves i, whose first guest is gone, to e: its code compiled for
// e's tier replaces the code compiled for the interruptible one.
func (i *Instance) recompile(ctx context.Context, e *engine, data []byte) error {
	start := time.Now()
	c, err := e.compile(ctx, i.path, data)
	if err != nil {
		i.closeCompiled()
		return err
	}
	stages.From(ctx).Add(stages.Compile, time.Since(start))
	_ = i.compiled.Close(context.Background())
	i.compiled, i.eng = c, e
	return nil
}

func readArtifact(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > MaxArtifactSize {
		return nil, fmt.Errorf("%s is %d bytes, over the limit of %d", path, fi.Size(), MaxArtifactSize)
	}
	var buf bytes.Buffer
	buf.Grow(int(fi.Size()))
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// checkHeader looks at the magic number and version, so that a file of
// another kind gets a plain answer rather than a decoder's.
func checkHeader(data []byte) error {
	header := []byte("\x00asm\x01\x00\x00\x00")
	switch {
	case len(data) == 0:
		return errors.New("the file is empty")
	case len(data) < len(header) && bytes.HasPrefix(header, data):
		return fmt.Errorf("the file is truncated (%d bytes)", len(data))
	case len(data) < 4 || !bytes.Equal(data[:4], header[:4]):
		return fmt.Errorf("it does not start with the wasm magic number \\0asm (it starts with %q)", data[:min(len(data), 8)])
	case len(data) < len(header):
		return fmt.Errorf("the file is truncated (%d bytes)", len(data))
	case !bytes.Equal(data[4:8], header[4:]):
		return fmt.Errorf("binary format version %x, not 1", data[4:8])
	}
	return nil
}

// checkShape checks what must hold before a guest starts: it is a c-shared
// build (it exports _initialize), it says its ABI version, and it imports
// nothing but WASI preview 1 and the functions of the host module "hotmod"
// (with their signatures; see call.go).
func checkShape(c wazero.CompiledModule) error {
	exports := c.ExportedFunctions()
	if _, ok := exports["_initialize"]; !ok {
		if _, ok := exports["_start"]; ok {
			return errors.New("it was built as a command (it exports _start, not _initialize): build it with -buildmode=c-shared, as `hotmod build --transport wasm` does")
		}
		return errors.New("it exports no _initialize: build it from a Go main package with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared (`hotmod build --transport wasm`)")
	}
	if _, ok := exports[exportABI]; !ok {
		return errors.New("it exports no " + exportABI + ": it is not a hotmod module, or it was built with Go older than 1.24 (the SDK's exports need //go:wasmexport, new in Go 1.24) or an SDK without the wasm transport")
	}
	if err := checkSignature(exports, exportABI, nil, []api.ValueType{api.ValueTypeI32}); err != nil {
		return err
	}
	for _, f := range c.ImportedFunctions() {
		if err := checkImport(f); err != nil {
			return err
		}
	}
	if len(c.ExportedMemories()) == 0 {
		return errors.New("it exports no memory")
	}
	return nil
}

// checkExports checks the exports of ABI 1 and their signatures.
func checkExports(c wazero.CompiledModule) error {
	i32, i64 := api.ValueTypeI32, api.ValueTypeI64
	want := map[string][2][]api.ValueType{
		exportBuffer:   {{i32}, {i32}},
		exportAbout:    {nil, {i64}},
		exportManifest: {nil, {i64}},
		exportCall:     {{i32, i32}, {i64}},
		exportInit:     {{i32}, {i64}},
		exportCheck:    {nil, {i64}},
		exportClose:    {nil, {i64}},
	}
	exports := c.ExportedFunctions()
	var missing []string
	for _, name := range requiredExports {
		if _, ok := exports[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("it says it speaks ABI %d but lacks the exports %s", abiMajor, strings.Join(missing, ", "))
	}
	for name, sig := range want {
		if err := checkSignature(exports, name, sig[0], sig[1]); err != nil {
			return err
		}
	}
	return nil
}

func checkSignature(exports map[string]api.FunctionDefinition, name string, params, results []api.ValueType) error {
	d := exports[name]
	if !equalTypes(d.ParamTypes(), params) || !equalTypes(d.ResultTypes(), results) {
		return fmt.Errorf("its export %s has the signature %s, not %s", name, signature(d.ParamTypes(), d.ResultTypes()), signature(params, results))
	}
	return nil
}

func equalTypes(a, b []api.ValueType) bool {
	return bytes.Equal(a, b)
}

func signature(params, results []api.ValueType) string {
	names := func(ts []api.ValueType) string {
		s := make([]string, len(ts))
		for k, t := range ts {
			s[k] = api.ValueTypeName(t)
		}
		return strings.Join(s, ", ")
	}
	return "(" + names(params) + ") → (" + names(results) + ")"
}

// readAbout asks the guest how it was built.
func (i *Instance) readAbout(ctx context.Context, g *guest) error {
	reply, flags, err := g.invoke(ctx, g.about)
	if err != nil {
		return fmt.Errorf("asking how it was built: %v", err)
	}
	if flags&replyError != 0 {
		return fmt.Errorf("asking how it was built: %v", decodeError(reply))
	}
	m, err := cbor.UnmarshalMap(reply)
	if err != nil {
		return fmt.Errorf("asking how it was built: %v", err)
	}
	i.about.Go, _ = m["go"].(string)
	i.about.SDK, _ = m["sdk"].(string)
	return nil
}

// readManifest asks the guest for its manifest and checks it as
// `hotmod contract` checks one: strictly.
func (i *Instance) readManifest(ctx context.Context, g *guest) error {
	reply, flags, err := g.invoke(ctx, g.man)
	if err != nil {
		return fmt.Errorf("reading its manifest: %v", err)
	}
	if flags&replyError != 0 {
		return fmt.Errorf("%v", decodeError(reply).Message)
	}
	man, err := sdk.ParseManifest(reply)
	if err != nil {
		return fmt.Errorf("its %v", err)
	}
	i.manifest = man
	return nil
}

// closeCompiled frees the compiled code of an instance that never got
// registered.
func (i *Instance) closeCompiled() {
	if i.released.CompareAndSwap(false, true) {
		_ = i.compiled.Close(context.Background())
	}
}

func (l *Loader) register(i *Instance) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return sdk.Errorf(sdk.CodeNotActive, "loading %s: the wasm loader is closed", i.path)
	}
	l.instances[i] = struct{}{}
	return nil
}

func (l *Loader) forget(i *Instance) {
	l.mu.Lock()
	delete(l.instances, i)
	l.mu.Unlock()
}

func (l *Loader) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// Close closes every version still loaded (running OnClose in their idle
// guests; guests in use close when their call returns), stops guests that
// are starting, waits for every guest to be gone (bounded by ctx: a call
// still running then is cut off), and closes the runtime and the
// compilation cache.
func (l *Loader) Close(ctx context.Context) error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	list := make([]*Instance, 0, len(l.instances))
	for i := range l.instances {
		list = append(list, i)
	}
	l.mu.Unlock()
	l.cancel()
	var errs []error
	for _, i := range list {
		if err := i.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	for l.guests.Load() > 0 && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
	if n := l.guests.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("wasm: %d guests still running when the loader closed: %w", n, ctx.Err()))
	}
	errs = append(errs, l.closeEngines())
	return errors.Join(errs...)
}

func (l *Loader) closeEngines() error {
	var errs []error
	for _, e := range l.engines {
		errs = append(errs, e.close())
	}
	return errors.Join(errs...)
}
