package main

import (
	"log/slog"
	"strings"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/spf13/pflag"
)

// wasmFlags are serve's flags for the WebAssembly runtime: each module's
// isolation tier and the bound of the compilation cache.
type wasmFlags struct {
	tiers      []string
	cacheLimit string
}

func addWasmFlags(fl *pflag.FlagSet) *wasmFlags {
	f := &wasmFlags{}
	fl.StringArrayVar(&f.tiers, "wasm-tier", nil, "isolation tier of WebAssembly modules: interruptible (the default: a deadline stops a running guest) or trusted (no termination checks, faster; a call past its deadline is abandoned and runs on, a version with 5 such calls running is quarantined, and a guest that never returns freezes the host at its next garbage collection: for code trusted to end its calls), for all (trusted) or one module (pricing=trusted); repeatable")
	fl.StringVar(&f.cacheLimit, "wasm-cache-limit", "1GiB", "bytes of compiled WebAssembly code kept in the cache directory; the least recently loaded entries beyond it are removed (bytes, or a number with KiB, MiB or GiB)")
	return f
}

// options turns the flags into registry options; a trusted tier is logged
// as a warning, since a deadline no longer stops those modules.
func (f *wasmFlags) options(logger *slog.Logger) ([]hotmod.Option, error) {
	limit, err := parseSize(f.cacheLimit)
	if err != nil {
		return nil, usagef("--wasm-cache-limit %q: %v", f.cacheLimit, err)
	}
	opts := []hotmod.Option{hotmod.WithWasmCacheLimit(limit)}
	if len(f.tiers) == 0 {
		return opts, nil
	}
	if err := wasm.CheckTiers(f.tiers); err != nil {
		return nil, usagef("--wasm-tier: %v", err)
	}
	var trusted []string
	for _, t := range f.tiers {
		if strings.HasSuffix(t, string(wasm.TierTrusted)) {
			trusted = append(trusted, t)
		}
	}
	if len(trusted) > 0 {
		logger.Warn("WebAssembly modules on the trusted tier: a deadline does not stop their guests; a call past it is abandoned and runs on, holding a core (and the host's garbage collections) until the guest returns",
			"wasm_tier", strings.Join(trusted, ", "))
	}
	return append(opts, hotmod.WithWasmTier(f.tiers...)), nil
}
