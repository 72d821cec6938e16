package wasm

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/sys"
)

// The capabilities a module may ask for (sdk.Module.Needs) and how a host
// grants them (Config.Grants). Without a grant a guest has none of them: no
// files, no environment, no network. Every guest gets the host's wall clock
// (the time of day) unless the host denies it with the grant "-clock" (then
// the guest sees wazero's pretend clock, fixed at 2022-01-01 and ticking a
// millisecond per reading, and a module that asks for the clock does not
// load); random bytes from crypto/rand: randomness is not authority, and
// Go's runtime seeds its maps with it; and a monotonic clock that measures
// real time from zero, with sleeps (see sandbox).
//
// A grant is written
//
//	[module ":"] capability ["=" value]
//
// where the module prefix limits it to one module (by name), and the
// capabilities are:
//
//	clock             the host's wall clock (the time of day): the default
//	-clock            denies the wall clock
//	env=NAME[,NAME…]  those environment variables of the host, read at load
//	fs=DIR            DIR, mounted read-write as the guest's root directory
//	fs-ro=DIR         DIR, mounted read-only as the guest's root directory
//
// A module asks for "clock", "env" or "fs"; fs-ro satisfies "fs". "net" is
// a capability modules may ask for, but this transport cannot grant it:
// WASI preview 1, which Go's wasip1 port targets, cannot open connections.
// A module-specific grant of a capability replaces a general one.

// Capability names, as modules ask for them.
const (
	capClock = "clock"
	capEnv   = "env"
	capFS    = "fs"
	capNet   = "net"
)

// knownCaps are the capabilities a module may ask for, sorted.
var knownCaps = []string{capClock, capEnv, capFS, capNet}

var grantModuleRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$`)

// grant is one parsed entry of Config.Grants.
type grant struct {
	module   string // "" for every module
	cap      string // clock, env or fs
	readOnly bool   // fs-ro
	deny     bool   // -clock
	dir      string // fs: an absolute host directory
	env      []string
	raw      string
}

// CheckGrants reports the first malformed grant in list, as NewLoader
// would: for checking a command line or a configuration file early.
func CheckGrants(list []string) error {
	_, err := parseGrants(list)
	return err
}

// parseGrants checks Config.Grants.
func parseGrants(list []string) ([]grant, error) {
	var out []grant
	for _, raw := range list {
		g, err := parseGrant(raw)
		if err != nil {
			return nil, fmt.Errorf("wasm: grant %q: %w", raw, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func parseGrant(raw string) (grant, error) {
	g := grant{raw: raw}
	s := strings.TrimSpace(raw)
	head, value, hasValue := strings.Cut(s, "=")
	if mod, c, ok := strings.Cut(head, ":"); ok {
		if !grantModuleRE.MatchString(mod) {
			return g, fmt.Errorf("%q is not a module name", mod)
		}
		g.module, head = mod, c
	}
	switch head {
	case capClock, "-" + capClock:
		if hasValue {
			return g, fmt.Errorf("%s takes no value", head)
		}
		g.cap, g.deny = capClock, head != capClock
	case capEnv:
		if !hasValue || value == "" {
			return g, fmt.Errorf("name the variables the module may read: env=NAME[,NAME…]")
		}
		g.cap = capEnv
		for _, n := range strings.Split(value, ",") {
			n = strings.TrimSpace(n)
			if n == "" || strings.ContainsAny(n, "=\x00") {
				return g, fmt.Errorf("%q is not an environment variable name", n)
			}
			g.env = append(g.env, n)
		}
	case capFS, "fs-ro":
		if !hasValue || value == "" {
			return g, fmt.Errorf("give the host directory to mount as the module's root: %s=DIR", head)
		}
		dir, err := filepath.Abs(value)
		if err != nil {
			return g, err
		}
		fi, err := os.Stat(dir)
		if err != nil {
			return g, err
		}
		if !fi.IsDir() {
			return g, fmt.Errorf("%s is not a directory", dir)
		}
		g.cap, g.dir, g.readOnly = capFS, dir, head == "fs-ro"
	case capNet:
		return g, fmt.Errorf("the wasm transport cannot grant net: WASI preview 1, which Go's wasip1 port targets, has no way to open connections; load a module that needs the network with the process transport")
	default:
		return g, fmt.Errorf("unknown capability %q (the wasm transport grants clock (the default; -clock denies it), env=NAME[,NAME…], fs=DIR and fs-ro=DIR, optionally for one module: NAME:fs-ro=DIR)", head)
	}
	return g, nil
}

// grantFor returns the grant of capability c for module, if any: a grant
// for that module beats a general one, and a later grant an earlier one.
func grantFor(grants []grant, module, c string) (grant, bool) {
	var found grant
	ok, specific := false, false
	for _, g := range grants {
		if g.cap != c || (g.module != "" && g.module != module) {
			continue
		}
		if specific && g.module == "" {
			continue
		}
		found, ok, specific = g, true, g.module != ""
	}
	return found, ok
}

// authority decides what a module that asks for needs gets. It returns the
// module configuration giving exactly that on top of base, or an error that
// lists every need refused and how to grant it.
func authority(base wazero.ModuleConfig, grants []grant, module string, needs []string) (wazero.ModuleConfig, error) {
	cfg := base
	clock, _ := grantFor(grants, module, capClock)
	clockDenied := !clockGiven(grants, module)
	if !clockDenied {
		cfg = cfg.WithSysWalltime()
	}
	var refused []string
	for _, n := range needs {
		switch n {
		case capNet:
			refused = append(refused, "net, which the wasm transport cannot give (WASI preview 1 has no sockets): load a module that needs the network with the process transport")
			continue
		case capClock, capEnv, capFS:
		default:
			refused = append(refused, fmt.Sprintf("%q, a capability this host does not know (it knows %s): a newer hotmod may", n, strings.Join(knownCaps, ", ")))
			continue
		}
		if n == capClock {
			if clockDenied {
				refused = append(refused, fmt.Sprintf("clock; this host denies it (the grant %q): a module that asks for the time of day would get a wrong one; remove that grant or add %q", clock.raw, module+":clock"))
			}
			continue
		}
		g, ok := grantFor(grants, module, n)
		if !ok {
			refused = append(refused, n+"; this host does not grant it: "+howToGrant(module, n))
			continue
		}
		switch n {
		case capEnv:
			for _, name := range g.env {
				if v, ok := os.LookupEnv(name); ok {
					cfg = cfg.WithEnv(name, v)
				}
			}
		case capFS:
			fs := wazero.NewFSConfig()
			if g.readOnly {
				fs = fs.WithReadOnlyDirMount(g.dir, "/")
			} else {
				fs = fs.WithDirMount(g.dir, "/")
			}
			cfg = cfg.WithFSConfig(fs)
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("module %s asks for %s", module, strings.Join(refused, "; and for "))
	}
	return cfg, nil
}

// clockGiven says whether module gets the host's wall clock: yes unless a
// grant denies it.
func clockGiven(grants []grant, module string) bool {
	g, ok := grantFor(grants, module, capClock)
	return !ok || !g.deny
}

// anyDenial says whether some grant denies the clock to some module.
func anyDenial(grants []grant) bool {
	for _, g := range grants {
		if g.deny {
			return true
		}
	}
	return false
}

// firstSandbox is the configuration of the guest that is started to read a
// module's manifest, before its name is known: the sandbox, with the wall
// clock unless some grant denies it to some module (a module denied the
// clock never sees it, not even in its package initialisation; one given
// it after all gets a new guest).
func firstSandbox(grants []grant) wazero.ModuleConfig {
	if anyDenial(grants) {
		return sandbox()
	}
	return sandbox().WithSysWalltime()
}

func howToGrant(module, c string) string {
	switch c {
	case capEnv:
		return fmt.Sprintf("add the grant %q, naming the variables it may read, with hotmod serve --wasm-grant or hotmod.WithWasmGrants", module+":env=NAME,NAME")
	case capFS:
		return fmt.Sprintf("add the grant %q (DIR becomes the module's root directory; %q for read-only) with hotmod serve --wasm-grant or hotmod.WithWasmGrants", module+":fs=DIR", module+":fs-ro=DIR")
	}
	return ""
}

// sandbox is the module configuration every guest starts from: no
// arguments, no environment, no files, a wall clock that only pretends
// (authority gives the real one unless the host denies it), real
// randomness, a monotonic clock that measures real time from the
// loader's start, sleeps cut into naps of at most maxNap, and _initialize (a
// c-shared guest's runtime and package initialisation) as the start
// function.
//
// Why the monotonic clock is real: Go's runtime paces its collector and its
// background work by it. With wazero's default, a clock that advances a
// millisecond per reading, a guest's runtime came to believe hours had
// passed after some hundred thousand calls, and its heap grew from 7 MB to
// 69 MB (and on to the memory limit) while the live heap stayed at 100 KB.
// A monotonic clock that starts at zero says how long things take, not when
// or where the host is; the time of day is what the clock capability
// gives (by default). Why sleeps are naps: a host function cannot be interrupted, so a
// guest sleeping an hour would outlive its call's deadline; woken every
// maxNap, the guest's runtime sleeps again through a loop that the deadline
// does interrupt.
func sandbox() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithStartFunctions("_initialize").
		WithRandSource(rand.Reader).
		WithNanotime(monotonic, sys.ClockResolution(time.Microsecond)).
		WithNanosleep(nap)
}

// maxNap is the longest a guest's sleep lasts before it is checked for an
// interruption.
const maxNap = 10 * time.Millisecond

var clockBase = time.Now()

func monotonic() int64 { return int64(time.Since(clockBase)) }

func nap(ns int64) { time.Sleep(min(time.Duration(ns), maxNap)) }
