package wasm

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Tier is how a module's calls end when their deadline passes. The host's
// operator chooses it per module (Config.Tiers); see RATIONALE.md, "Why two
// isolation tiers for wasm".
type Tier string

const (
	// TierInterruptible: a call's context interrupts a running guest
	// (wazero's WithCloseOnContextDone). A guest in an endless loop is
	// stopped at the call's deadline and thrown away. The price: the guest
	// exits to Go at every loop header it runs (about 40 ns each). The
	// default.
	TierInterruptible Tier = "interruptible"
	// TierTrusted: compiled without termination checks, so calls run at
	// full speed, but nothing stops a running guest. At the deadline the
	// registry's Deadline guard abandons the call (as for native code: the
	// caller gets timeout, the guest runs on, holding its pool slot and a
	// core, until it returns), and a version whose abandoned calls pile up
	// is quarantined. A guest in an endless loop runs until the process
	// ends, and the host's next garbage collection, which must stop every
	// goroutine, waits for it forever. For code the operator trusts to end
	// its calls.
	TierTrusted Tier = "trusted"
)

// benchTiers are the tiers of a Loader whose Config has none: nil, except
// in benchmarks that measure the trusted tier through code written before
// tiers (SetInterruptible in export_test.go).
var benchTiers []string

// tierRule is one parsed entry of Config.Tiers.
type tierRule struct {
	module string // "" for every module
	tier   Tier
}

// CheckTiers reports the first malformed entry in list, as NewLoader would:
// for checking a command line or a configuration file early.
func CheckTiers(list []string) error {
	_, err := parseTiers(list)
	return err
}

// parseTiers checks Config.Tiers: each entry is "TIER" (every module) or
// "MODULE=TIER". A module's own entry wins over the general one; among
// entries of the same reach, the last wins.
func parseTiers(list []string) ([]tierRule, error) {
	var out []tierRule
	for _, raw := range list {
		module, name, found := strings.Cut(strings.TrimSpace(raw), "=")
		if !found {
			module, name = "", module
		}
		if found && !grantModuleRE.MatchString(module) {
			return nil, fmt.Errorf("wasm: tier %q: %q is not a module name (lower-case letters, digits, '-', '_' and dots); write MODULE=TIER or TIER", raw, module)
		}
		switch t := Tier(name); t {
		case TierInterruptible, TierTrusted:
			out = append(out, tierRule{module: module, tier: t})
		default:
			return nil, fmt.Errorf("wasm: tier %q: unknown tier %q: the tiers are %q (the default: a deadline stops a running guest) and %q (no termination checks: for code trusted to end its calls)",
				raw, name, TierInterruptible, TierTrusted)
		}
	}
	return out, nil
}

// tierOf is the tier rules give module.
func tierOf(rules []tierRule, module string) Tier {
	t, own := TierInterruptible, false
	for _, r := range rules {
		switch {
		case r.module == module:
			t, own = r.tier, true
		case r.module == "" && !own:
			t = r.tier
		}
	}
	return t
}

// anyTrusted reports whether some module may get the trusted tier.
func anyTrusted(rules []tierRule) bool {
	for _, r := range rules {
		if r.tier == TierTrusted {
			return true
		}
	}
	return false
}

// engine is the wazero runtime of one tier, with its own compilation cache
// in a directory of its own: wazero keys cached code by the artifact's
// bytes and its settings, but one cache (its engine) must not serve
// runtimes compiled with different settings.
type engine struct {
	tier  Tier
	rt    wazero.Runtime
	cache wazero.CompilationCache
	dir   string // the cache's directory: <Config.CacheDir>/<tier>
	// workers is Config.CompileWorkers.
	workers int
}

// newEngine starts the runtime of tier t, with WASI and the host module.
func (l *Loader) newEngine(ctx context.Context, t Tier) (*engine, error) {
	dir := filepath.Join(l.cfg.CacheDir, string(t))
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return nil, fmt.Errorf("wasm: compilation cache: %w", err)
	}
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(t == TierInterruptible).
		WithMemoryLimitPages(l.cfg.MemoryLimitPages).
		WithCompilationCache(cache)
	e := &engine{tier: t, rt: wazero.NewRuntimeWithConfig(ctx, rc), cache: cache, dir: dir, workers: l.cfg.CompileWorkers}
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, e.rt); err != nil {
		e.close()
		return nil, fmt.Errorf("wasm: WASI: %w", err)
	}
	if err := l.instantiateHostModule(ctx, e.rt); err != nil {
		e.close()
		return nil, fmt.Errorf("wasm: the %q host module: %w", importModule, err)
	}
	return e, nil
}

func (e *engine) close() error {
	return errors.Join(e.rt.Close(context.Background()), e.cache.Close(context.Background()))
}
