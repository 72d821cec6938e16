package hotmod

import (
	"fmt"
	"sync"
	"time"

	"github.com/hotmod/hotmod/internal/goroutines"
)

// GoroutineLimits bounds the goroutines that one version of a native or
// builtin module may leave running (goroutines it started that outlive the
// calls that started them). The registry counts them every Every (default
// 5s); ModuleInfo.Goroutines shows the last count. A zero field takes its
// default; a negative Warn or Limit turns that check off.
type GoroutineLimits struct {
	// Warn: past this count the version is logged at WARN, once per
	// crossing (default 1000).
	Warn int
	// Limit: past this count the version is quarantined: Failed, no longer
	// routed, closed (default 10000). Its goroutines run on: Go cannot stop
	// them.
	Limit int
	// Every is the time between counts (default 5s).
	Every time.Duration
}

// WithGoroutineLimits sets how many goroutines a native or builtin module
// version may leave running before it is logged, and before it is
// quarantined. See GoroutineLimits for the defaults.
func WithGoroutineLimits(l GoroutineLimits) Option {
	return optionFunc(func(c *config) { c.goroutines = l })
}

// goroutineCount is the registry's sampler, started with the first version
// that runs in the host's process.
type goroutineCount struct {
	once    sync.Once
	mu      sync.Mutex
	sampler *goroutines.Sampler
}

// goroutineSampler returns the sampler that counts goroutines for a version
// of transport t, or nil when t runs its modules out of the host's process.
func (r *Registry) goroutineSampler(t Transport) *goroutines.Sampler {
	if t != Native && t != Builtin {
		return nil
	}
	g := &r.goroutines
	g.once.Do(func() {
		l := r.cfg.goroutines
		s := goroutines.Start(goroutines.Config{
			Every: l.Every, Warn: l.Warn, Limit: l.Limit, Logger: r.cfg.logger,
			Busy: r.busy, OnLimit: r.tooManyGoroutines,
		})
		g.mu.Lock()
		g.sampler = s
		g.mu.Unlock()
	})
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sampler
}

// stopGoroutineSampler ends the counting (Close).
func (r *Registry) stopGoroutineSampler() {
	g := &r.goroutines
	g.once.Do(func() {}) // none may start from now on
	g.mu.Lock()
	s := g.sampler
	g.mu.Unlock()
	if s != nil {
		s.Stop()
	}
}

// busy is how many calls of the versions named ref are in flight.
func (r *Registry) busy(ref string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.all {
		if v.ref() == ref && v.goroutines != nil {
			n += int(v.inFlight())
		}
	}
	return n
}

// tooManyGoroutines quarantines the active version named ref.
func (r *Registry) tooManyGoroutines(ref string, n, limit int) {
	r.mu.Lock()
	var inst instance
	for _, v := range r.all {
		if v.ref() == ref && v.goroutines != nil && v.state == StateActive {
			inst = v.inst
		}
	}
	r.mu.Unlock()
	if inst != nil {
		r.failActive(inst, fmt.Errorf("quarantined: it left %d goroutines running, more than the limit of %d (GoroutineLimits.Limit, --goroutine-limit): does it start a goroutine per call that never ends?", n, limit))
	}
}
