package main

import (
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/spf13/pflag"
)

// containFlags bound what modules may leave behind: goroutines of native
// modules, and the processes of process modules.
type containFlags struct {
	goroutineWarn, goroutineLimit int
	goroutineEvery                time.Duration
}

func addContainFlags(fl *pflag.FlagSet) *containFlags {
	f := &containFlags{}
	fl.IntVar(&f.goroutineWarn, "goroutine-warn", goroutines.DefaultWarn, "goroutines a native module version may leave running before it is logged at WARN (negative: never)")
	fl.IntVar(&f.goroutineLimit, "goroutine-limit", goroutines.DefaultLimit, "goroutines a native module version may leave running before it is quarantined (Failed) (negative: never)")
	fl.DurationVar(&f.goroutineEvery, "goroutine-every", goroutines.DefaultEvery, "how often the goroutines of native modules are counted")
	return f
}

// options are the registry options the flags give.
func (f *containFlags) options() ([]hotmod.Option, error) {
	if f.goroutineEvery <= 0 {
		return nil, usagef("--goroutine-every %s: give a positive duration, such as 5s", f.goroutineEvery)
	}
	if f.goroutineWarn >= 0 && f.goroutineLimit >= 0 && f.goroutineWarn > f.goroutineLimit {
		return nil, usagef("--goroutine-warn %d is above --goroutine-limit %d: the warning would never come before the quarantine", f.goroutineWarn, f.goroutineLimit)
	}
	return []hotmod.Option{
		hotmod.WithGoroutineLimits(hotmod.GoroutineLimits{Warn: f.goroutineWarn, Limit: f.goroutineLimit, Every: f.goroutineEvery}),
		hotmod.WithContainedChildren(), // the daemon hosts nothing but modules: it may be their subreaper
	}, nil
}
