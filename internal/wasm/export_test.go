package wasm

import (
	"context"
	"path/filepath"
)

// SetInterruptible puts the modules of Loaders made afterwards whose
// Config names no tier on the interruptible tier (on) or the trusted one,
// and returns the function that restores the default.
func SetInterruptible(on bool) (restore func()) {
	old := benchTiers
	benchTiers = nil
	if !on {
		benchTiers = []string{string(TierTrusted)}
	}
	return func() { benchTiers = old }
}

// TierOf is the tier the rules give module.
func TierOf(rules []string, module string) Tier {
	parsed, err := parseTiers(rules)
	if err != nil {
		panic(err)
	}
	return tierOf(parsed, module)
}

// CallEmpty calls an export that does nothing (hotmod_abi) on a pooled
// guest: the floor of a call's cost.
func (i *Instance) CallEmpty(ctx context.Context) error {
	g, err := i.acquire(ctx, "hotmod_abi")
	if err != nil {
		return err
	}
	_, _, err = g.abi(ctx)
	i.release(g)
	return err
}

// StartOne starts a guest as a call that grows the pool would, and returns
// the size of its memory in bytes; the guest is thrown away.
func (i *Instance) StartOne(ctx context.Context) (uint32, error) {
	g, err := i.startGuest(ctx, i.modCfg)
	if err != nil {
		return 0, err
	}
	size := g.mem.Size()
	g.discard()
	i.down()
	return size, nil
}

// Guests starts n guests and keeps them (for measuring memory); the
// returned function throws them away.
func (i *Instance) Guests(ctx context.Context, n int) (memBytes uint64, free func(), err error) {
	var gs []*guest
	free = func() {
		for _, g := range gs {
			g.discard()
			i.down()
		}
	}
	for k := 0; k < n; k++ {
		g, err := i.startGuest(ctx, i.modCfg)
		if err != nil {
			return 0, free, err
		}
		gs = append(gs, g)
		memBytes += uint64(g.mem.Size())
	}
	return memBytes, free, nil
}

// Imports lists the functions the version's code imports, as
// "module.name".
func (i *Instance) Imports() []string {
	var out []string
	for _, f := range i.compiled.ImportedFunctions() {
		mod, name, _ := f.Import()
		out = append(out, mod+"."+name)
	}
	return out
}

// CacheEntries returns the version's files in the compilation cache.
func (i *Instance) CacheEntries() []string {
	i.l.mu.Lock()
	defer i.l.mu.Unlock()
	return append([]string(nil), i.entries...)
}

// CacheEntry returns the file under dir (a Config.CacheDir) where the code
// of data compiled for tier is, or "".
func CacheEntry(dir string, data []byte, tier Tier) string {
	return entryOf(filepath.Join(dir, string(tier)), data, tier == TierInterruptible)
}
