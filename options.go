package hotmod

import (
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/hotmod/hotmod/internal/rollout"
	"github.com/hotmod/hotmod/internal/signing"
)

// Option configures a Registry. Options are made by the With… functions.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	logger        *slog.Logger
	drainTimeout  time.Duration
	settle        time.Duration
	cacheDir      string
	moduleConfig  map[string]map[string]any
	allowBreaking bool
	processPool   int

	wasmPool        int
	wasmMemoryPages uint32
	wasmGrants      []string
	wasmTiers       []string
	wasmCacheLimit  int64

	guards    *Guards
	callDepth int

	allowCommands   []string
	maxArtifactSize int64
	trustKeys       []string          // WithTrustedKeys
	trust           *signing.Verifier // nil: signatures are not checked
	trustErr        error             // a trusted key could not be read: refuse every load
	stateDir        string
	goroutines      GoroutineLimits
	contain         bool
	rollout         RolloutPolicy
	moduleRollout   map[string]RolloutPolicy
	keep            *rollout.Keep
	health          rollout.Thresholds
	observers       []Observer
}

func defaultConfig() config {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return config{
		logger:       slog.Default(),
		drainTimeout: 30 * time.Second,
		settle:       10 * time.Millisecond,
		cacheDir:     filepath.Join(dir, "hotmod"),
		moduleConfig: map[string]map[string]any{},
		callDepth:    DefaultCallDepth,

		maxArtifactSize: DefaultMaxArtifactSize,
		health:          rollout.DefaultThresholds,
	}
}

// WithCallDepth sets how many hops a chain of module-to-module calls may
// make (a → b → c is two) before the next call fails with ErrCallDepth.
// The default is DefaultCallDepth (8).
func WithCallDepth(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.callDepth = n
		}
	})
}

// WithStateDir keeps the registry's crash journal and quarantine list in
// dir (created with mode 0700). The registry records each native artifact
// it opens and counts the calls running on native and builtin modules, in
// files that outlive a crash of the process; the next registry given the
// same dir reads what the dead one left, names the artifact that ended it
// and quarantines it (Quarantined lists, LiftQuarantine lifts), so a host
// restarted by systemd does not die again on the same file. Without it
// nothing is written. It also points the Go runtime's crash output
// (runtime/debug.SetCrashOutput, process-wide) at the journal, so that a
// fatal panic's frames are kept even when nobody keeps stderr.
func WithStateDir(dir string) Option {
	return optionFunc(func(c *config) { c.stateDir = dir })
}

// WithLogger sets the structured logger for lifecycle events and module
// panics. The default is slog.Default().
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithDrainTimeout bounds how long a replaced version waits for its in-flight
// calls before it is unloaded anyway. The default is 30s.
func WithDrainTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.drainTimeout = d })
}

// WithSettle sets how long a watched file must go without change events
// before it is looked at (a burst of writes becomes one load). The default
// is 10ms. Even then a file is loaded only once it is complete: on Linux,
// not while any process holds it open for writing; where writers cannot be
// seen, not before its size and modification time have held still for 5s
// (or d, if longer). Renaming a complete file into the directory is the
// fastest and safest way to publish an artifact.
func WithSettle(d time.Duration) Option {
	return optionFunc(func(c *config) { c.settle = d })
}

// DefaultMaxArtifactSize bounds an artifact's size unless
// WithMaxArtifactSize says otherwise: 256 MiB, several times the largest
// plugins, guests and executables built from Go (tens of MiB), while an
// artifact that size is still cheap to copy, hash and compile.
const DefaultMaxArtifactSize = 256 << 20

// WithMaxArtifactSize refuses artifacts larger than n bytes before any of
// their bytes are read (default DefaultMaxArtifactSize). For a launch file
// the limit applies to every file it names too.
func WithMaxArtifactSize(n int64) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxArtifactSize = n
		}
	})
}

// WithAllowCommands lets launch files (NAME.process.json) start the given
// programs: absolute paths, or names looked up in the PATH ("python3").
// Without it a launch file may only start a program inside its own
// directory, so that whoever may drop a text file into the watched
// directory cannot make the host run any program it has. An allowed
// interpreter runs whatever arguments a launch file gives it
// (python3 -c …): allow one only where those who write to the directory
// may run code on the host anyway.
func WithAllowCommands(paths ...string) Option {
	return optionFunc(func(c *config) { c.allowCommands = append(c.allowCommands, paths...) })
}

// WithCacheDir sets where private copies of artifacts are kept. The default
// is hotmod under the user's cache directory.
func WithCacheDir(dir string) Option {
	return optionFunc(func(c *config) { c.cacheDir = dir })
}

// WithModuleConfig gives a module's Init hook its configuration.
func WithModuleConfig(module string, cfg map[string]any) Option {
	return optionFunc(func(c *config) { c.moduleConfig[module] = cfg })
}

// WithAllowBreaking lets a version activate even when its schema changes
// are larger than its version bump allows (see internal/contract). By
// default such a version is refused: it is Failed with each breaking change
// listed, and the version before it keeps serving.
func WithAllowBreaking() Option {
	return optionFunc(func(c *config) { c.allowBreaking = true })
}

// WithProcessPool sets how many child processes serve each version of a
// process module (default 1; calls go to the least loaded). More children
// help CPU-bound modules.
func WithProcessPool(n int) Option {
	return optionFunc(func(c *config) { c.processPool = n })
}

// WithWasmGrants grants WebAssembly modules capabilities they ask for in
// their manifest (sdk.Module.Needs); without a grant a guest has no
// filesystem or environment, and a module that asks for one is refused at
// load. A grant is "env=NAME[,NAME…]", "fs=DIR" or "fs-ro=DIR", optionally
// for one module ("pricing:fs-ro=/srv/prices"). Every guest gets the host's
// time of day unless denied with "-clock" (or "pricing:-clock" for one
// module; "pricing:clock" gives it back to one module): a denied guest sees
// a pretend clock (2022-01-01), and a module that asks for the clock is
// refused at load.
func WithWasmGrants(grants ...string) Option {
	return optionFunc(func(c *config) { c.wasmGrants = append(c.wasmGrants, grants...) })
}

// WithWasmTier chooses the isolation tier of WebAssembly modules: "TIER"
// for every module, "MODULE=TIER" for one (a module's own entry wins).
// "interruptible", the default, stops a running guest at its call's
// deadline, at the price of a check at every loop the guest runs.
// "trusted" compiles without those checks (calls run up to several times
// faster) but nothing stops a running guest: with WithGuards, a call past
// its deadline is abandoned as a native one is (the caller gets timeout,
// the guest runs on until it returns), and a version whose abandoned calls
// pile up to Guards.AbandonLimit is quarantined; without guards the caller
// waits for the guest. While a trusted guest runs, the host's garbage
// collections wait for it (Go cannot stop it), so a guest that never
// returns freezes the host. Give it only to modules trusted to end their
// calls quickly.
func WithWasmTier(tiers ...string) Option {
	return optionFunc(func(c *config) { c.wasmTiers = append(c.wasmTiers, tiers...) })
}

// WithWasmCacheLimit bounds the bytes of compiled WebAssembly code kept in
// the cache directory (default 1 GiB; negative: no limit). At each load
// the least recently loaded entries beyond it are removed, never one a
// loaded version uses.
func WithWasmCacheLimit(bytes int64) Option {
	return optionFunc(func(c *config) { c.wasmCacheLimit = bytes })
}

// WithWasmPoolSize sets how many guest instances may serve one version of a
// WebAssembly module at once (default GOMAXPROCS; they start on demand).
func WithWasmPoolSize(n int) Option {
	return optionFunc(func(c *config) { c.wasmPool = n })
}

// WithWasmMemoryLimit caps each guest's linear memory, in 64 KiB pages
// (default 4096 = 256 MiB). A guest that needs more fails its call.
func WithWasmMemoryLimit(pages uint32) Option {
	return optionFunc(func(c *config) { c.wasmMemoryPages = pages })
}

// Guards configures the per-call guards: a deadline, a concurrency limit per
// module, a circuit breaker per method of a version and a panic net. A zero field takes
// its default.
type Guards struct {
	// Timeout is a call's deadline when nothing more specific is set
	// (default 10s; negative: none). A native call cannot be pre-empted:
	// at its deadline the caller gets timeout while the call runs on.
	Timeout time.Duration
	// ModuleTimeouts and MethodTimeouts (module → method → deadline)
	// override Timeout. Where neither is set for a method, the deadline its
	// manifest suggests (sdk.Timeout), if any, comes before Timeout, capped
	// at a minute.
	ModuleTimeouts map[string]time.Duration
	MethodTimeouts map[string]map[string]time.Duration
	// AbandonLimit is how many timed-out native calls (or calls of a
	// trusted-tier wasm version) of one version may still be running
	// before the version is quarantined (Failed) (default 5).
	AbandonLimit int
	// Concurrency is how many calls one module may run at once; more fail
	// with overloaded at once (default 64; negative: no limit).
	Concurrency int
	// BreakerFailures consecutive failures of a method open that method's
	// circuit (default 3); its calls then fail fast with circuit_open until,
	// after BreakerCoolDown (default 5s), one probe call decides. The
	// version's other methods keep answering.
	BreakerFailures int
	BreakerCoolDown time.Duration
}

// WithGuards puts the guards in front of every call. Without this option
// calls go straight to the module (what the library does by default, for
// the lowest overhead); `hotmod serve` turns them on.
func WithGuards(g Guards) Option {
	return optionFunc(func(c *config) { c.guards = &g })
}

// WithContainedChildren makes every process that a process module's child
// starts, at any depth, end with that child (when the module is unloaded,
// when the child crashes, when the registry closes), even processes that
// left its process group with setsid. The host process becomes a child
// subreaper (orphaned descendants re-parent to it, and it reaps them), and
// each child starts in a cgroup of its own where the host may create one
// (cgroup v2, delegated to it). Both change the whole process, so this is
// an option; `hotmod serve` sets it. Without it a child's process group,
// the processes it started (read from /proc) and those carrying its marker
// are killed, which misses only a setsid'd process that also cleared its
// environment.
func WithContainedChildren() Option {
	return optionFunc(func(c *config) { c.contain = true })
}
