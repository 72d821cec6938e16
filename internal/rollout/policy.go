// Package rollout decides how a new version of a module takes over from the
// one that serves: at once (immediate), in steps of traffic with a health
// check at each (canary), or only when an operator says so (manual). It is
// pure: counters, a step machine and a health comparison, driven by the
// registry with the time it passes in, so every decision can be tested
// with a fake clock.
package rollout

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kind is how a new version takes over.
type Kind string

// The rollout kinds.
const (
	// Immediate routes every call to the new version the moment it is
	// active.
	Immediate Kind = "immediate"
	// Canary sends a growing share of calls to the new version, step by
	// step, and rolls it back when it is clearly worse than the stable one.
	Canary Kind = "canary"
	// Manual keeps the new version Standby until it is promoted.
	Manual Kind = "manual"
)

// Defaults of a canary.
var DefaultSteps = []int{10, 50, 100}

const (
	// DefaultInterval is how long a canary holds each step.
	DefaultInterval = 30 * time.Second
	// MinInterval is the shortest hold a step may have: the health check
	// needs calls to look at.
	MinInterval = 10 * time.Millisecond
	// MaxSteps bounds the list of steps.
	MaxSteps = 20
)

// Policy is a rollout policy.
type Policy struct {
	Kind     Kind          `json:"kind"`
	Steps    []int         `json:"steps,omitempty"`    // percent of calls, rising, ending at 100 (canary)
	Interval time.Duration `json:"interval,omitempty"` // hold per step (canary)
}

// NewCanary returns a canary policy, checked: steps rise strictly within
// 1..100 (100 is added when missing), interval ≥ MinInterval. Empty steps
// or a zero interval take the defaults.
func NewCanary(steps []int, interval time.Duration) (Policy, error) {
	if len(steps) == 0 {
		steps = DefaultSteps
	}
	if interval == 0 {
		interval = DefaultInterval
	}
	if interval < MinInterval {
		return Policy{}, fmt.Errorf("canary interval %s is shorter than %s: each step needs time to gather calls", interval, MinInterval)
	}
	if len(steps) > MaxSteps {
		return Policy{}, fmt.Errorf("%d canary steps: at most %d", len(steps), MaxSteps)
	}
	prev := 0
	for _, s := range steps {
		if s <= prev || s > 100 {
			return Policy{}, fmt.Errorf("canary steps %v: each step is a percentage of calls, above the one before it and at most 100 (e.g. 10,50,100)", steps)
		}
		prev = s
	}
	out := append([]int(nil), steps...)
	if prev != 100 {
		out = append(out, 100)
	}
	return Policy{Kind: Canary, Steps: out, Interval: interval}, nil
}

// Parse reads a policy by name (immediate, canary, manual) with a canary's
// steps ("10,50,100") and interval.
func Parse(kind, steps string, interval time.Duration) (Policy, error) {
	switch Kind(kind) {
	case Immediate, "":
		return Policy{Kind: Immediate}, nil
	case Manual:
		return Policy{Kind: Manual}, nil
	case Canary:
		var ss []int
		for _, f := range strings.Split(steps, ",") {
			if f = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(f), "%")); f == "" {
				continue
			}
			n, err := strconv.Atoi(f)
			if err != nil {
				return Policy{}, fmt.Errorf("canary steps %q: %q is not a whole percentage (e.g. 10,50,100)", steps, f)
			}
			ss = append(ss, n)
		}
		return NewCanary(ss, interval)
	}
	return Policy{}, fmt.Errorf("rollout policy %q: use immediate, canary or manual", kind)
}

func (p Policy) String() string {
	if p.Kind != Canary {
		return string(p.Kind)
	}
	s := make([]string, len(p.Steps))
	for i, n := range p.Steps {
		s[i] = strconv.Itoa(n)
	}
	return fmt.Sprintf("canary %s%% every %s", strings.Join(s, ","), p.Interval)
}

// Keep says how long a replaced version stays Standby, ready to take calls
// back at once: at most Versions of them per module, each for at most For.
type Keep struct {
	Versions int           `json:"versions"`
	For      time.Duration `json:"for"`
}

// DefaultKeep is what a canary or manual rollout keeps: the version it
// replaced, for 15 minutes — long enough to notice trouble after a
// promotion, short enough not to hold memory and processes for long.
var DefaultKeep = Keep{Versions: 1, For: 15 * time.Minute}
