package wasm

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/experimental"
)

// Precompile compiles the artifacts at paths for each of tiers (none means
// TierInterruptible) into cfg.CacheDir, so that a later Load of them with
// the same cache takes their code from it; it starts no guest. The
// artifacts compile one after the other, each with workers goroutines
// (wazero's compilation workers; below 2, one).
func Precompile(ctx context.Context, cfg Config, tiers []Tier, workers int, paths ...string) error {
	if len(tiers) == 0 {
		tiers = []Tier{TierInterruptible}
	}
	for _, t := range tiers {
		cfg.Tiers = append(cfg.Tiers, string(t))
	}
	cfg.CompileWorkers = workers
	l, err := NewLoader(ctx, cfg)
	if err != nil {
		return err
	}
	var errs []error
	for _, path := range paths {
		data, err := artifactBytes(path, nil)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, t := range tiers {
			e := l.engines[t]
			if e == nil {
				e = l.engines[TierInterruptible]
			}
			c, err := e.compile(ctx, path, data)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s (%s): %w", path, t, err))
				continue
			}
			_ = c.Close(ctx)
		}
	}
	return errors.Join(append(errs, l.Close(ctx))...)
}

// withWorkers asks wazero to compile with n goroutines (below 2: one).
func withWorkers(ctx context.Context, n int) context.Context {
	if n < 2 {
		return ctx
	}
	return experimental.WithCompilationWorkers(ctx, n)
}
