package goroutines

import (
	"log/slog"
	"sync"
	"time"
)

// The defaults of Config. A Go program runs thousands of goroutines without
// trouble, and a module that serves requests concurrently may hold a few
// hundred of its own (workers, timers, one per connection of a pool), so
// the warning comes at 1000, which no steady module reaches and a module
// leaking one per call reaches within seconds under load. The limit, ten
// times that, still leaves the host far from trouble (10,000 parked
// goroutines hold about 80 MiB of stacks at most, usually 20–40) while no
// well-behaved module comes near it.
const (
	DefaultEvery = 5 * time.Second
	DefaultWarn  = 1000
	DefaultLimit = 10000
)

// Config says how often to sample and what a version may hold.
type Config struct {
	// Every is the time between samples (default DefaultEvery).
	Every time.Duration
	// Warn is the count past which a version is logged at WARN, once per
	// crossing (default DefaultWarn; negative: never).
	Warn int
	// Limit is the count past which OnLimit is called, once per crossing
	// (default DefaultLimit; negative: never).
	Limit int
	// Logger gets the warnings.
	Logger *slog.Logger
	// Busy says how many calls of version ref are running now: their
	// goroutines carry its label while they run and are not counted.
	Busy func(ref string) int
	// OnLimit is told, on the sampler's goroutine, that version ref holds n
	// goroutines, more than Limit.
	OnLimit func(ref string, n, limit int)
}

func (c Config) withDefaults() Config {
	if c.Every <= 0 {
		c.Every = DefaultEvery
	}
	if c.Warn == 0 {
		c.Warn = DefaultWarn
	}
	if c.Limit == 0 {
		c.Limit = DefaultLimit
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Busy == nil {
		c.Busy = func(string) int { return 0 }
	}
	return c
}

// Sampler counts the goroutines of every version now and then.
type Sampler struct {
	cfg  Config
	stop chan struct{}
	done chan struct{}

	mu     sync.Mutex
	counts map[string]int
	over   map[string]uint8 // per version: overWarn, overLimit bits
}

const (
	overWarn = 1 << iota
	overLimit
)

// Start samples every cfg.Every until Stop.
func Start(cfg Config) *Sampler {
	s := &Sampler{cfg: cfg.withDefaults(), stop: make(chan struct{}), done: make(chan struct{}),
		counts: map[string]int{}, over: map[string]uint8{}}
	go s.loop()
	return s
}

// maxShare bounds the time the sampler takes: a sample that took d waits
// at least d*maxShare before the next (a sample costs ≈ 0.5 ms with 100
// goroutines, ≈ 100 ms with 10,000), so counting takes about 1% of a core
// at most; but never more than maxStretch periods, so a leak is still
// seen in time.
const (
	maxShare   = 100
	maxStretch = 10
)

func (s *Sampler) loop() {
	defer close(s.done)
	t := time.NewTimer(s.cfg.Every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			start := time.Now()
			s.Sample()
			t.Reset(max(s.cfg.Every, min(maxShare*time.Since(start), maxStretch*s.cfg.Every)))
		case <-s.stop:
			return
		}
	}
}

// Stop ends the sampling and waits for a sample in progress.
func (s *Sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}

// Count is how many goroutines version ref held at the last sample, its
// calls in flight not included.
func (s *Sampler) Count(ref string) int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[ref]
}

// Sample counts now, warns and reports what crossed a limit.
func (s *Sampler) Sample() {
	raw, err := Count()
	if err != nil {
		s.cfg.Logger.Warn("cannot count the modules' goroutines", "error", err)
		return
	}
	for ref, n := range raw {
		raw[ref] = max(0, n-s.cfg.Busy(ref))
	}
	type crossing struct {
		ref string
		n   int
	}
	var warn, limit []crossing
	s.mu.Lock()
	s.counts = raw
	for ref := range s.over {
		if _, ok := raw[ref]; !ok {
			delete(s.over, ref)
		}
	}
	for ref, n := range raw {
		was := s.over[ref]
		now := was
		now = flag(now, overWarn, s.cfg.Warn >= 0 && n > s.cfg.Warn)
		now = flag(now, overLimit, s.cfg.Limit >= 0 && n > s.cfg.Limit)
		s.over[ref] = now
		if now&overWarn != 0 && was&overWarn == 0 {
			warn = append(warn, crossing{ref, n})
		}
		if now&overLimit != 0 && was&overLimit == 0 {
			limit = append(limit, crossing{ref, n})
		}
	}
	s.mu.Unlock()
	for _, c := range warn {
		s.cfg.Logger.Warn("a module holds many goroutines: does it leak one per call?",
			"version", c.ref, "goroutines", c.n, "warn", s.cfg.Warn, "limit", s.cfg.Limit)
	}
	for _, c := range limit {
		if s.cfg.OnLimit != nil {
			s.cfg.OnLimit(c.ref, c.n, s.cfg.Limit)
		}
	}
}

func flag(bits, bit uint8, on bool) uint8 {
	if on {
		return bits | bit
	}
	return bits &^ bit
}
