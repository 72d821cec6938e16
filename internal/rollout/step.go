package rollout

import (
	"fmt"
	"time"
)

// Rollout is one module's rollout in progress: a canary taking a share of
// the calls to the module's plain name from stable, step by step, or (Step
// −1) a candidate kept Standby until it is promoted.
type Rollout struct {
	Module string    `json:"module"`
	Stable string    `json:"stable"` // versions
	Canary string    `json:"canary"`
	Policy Policy    `json:"policy"`
	Step   int       `json:"step"`  // index into Policy.Steps; −1: Standby, no calls
	Since  time.Time `json:"since"` // when the step began
}

// Start begins a rollout of canary over stable under p at now: a canary
// at its first step, anything else Standby until promoted.
func Start(module, stable, canary string, p Policy, now time.Time) Rollout {
	r := Rollout{Module: module, Stable: stable, Canary: canary, Policy: p, Step: -1, Since: now}
	if p.Kind == Canary && len(p.Steps) > 1 {
		r.Step = 0
	}
	return r
}

// Percent is the share of plain calls the canary takes now.
func (r Rollout) Percent() int {
	if r.Step < 0 || r.Step >= len(r.Policy.Steps) {
		return 0
	}
	return r.Policy.Steps[r.Step]
}

// Weight is Percent in hundredths of a percent (0..10000), what a call's
// random draw or key hash is compared with.
func (r Rollout) Weight() uint64 { return uint64(r.Percent()) * 100 }

// Action is what a rollout does next.
type Action int

// The actions.
const (
	Hold     Action = iota // stay at this step
	Advance                // move to the next step
	Complete               // the canary becomes stable
	RollBack               // all calls back to stable; the canary fails
)

// Decision is an Action and why.
type Decision struct {
	Action Action
	Reason string
}

// Next decides, at now, from the canary's and stable's calls since the step
// began: a canary clearly worse than stable is rolled back at once; a
// healthy one moves on when the step's time is up; the last step completes
// it. A Standby candidate waits for an operator.
func (r Rollout) Next(now time.Time, canary, stable Sample, th Thresholds) Decision {
	if r.Step < 0 {
		return Decision{Action: Hold}
	}
	if why := th.Judge(canary, stable, r.Stable); why != "" {
		return Decision{Action: RollBack, Reason: fmt.Sprintf("rolled back at %d %%: %s", r.Percent(), why)}
	}
	if now.Sub(r.Since) < r.Policy.Interval {
		return Decision{Action: Hold}
	}
	if r.Step+1 >= len(r.Policy.Steps)-1 {
		return Decision{Action: Complete, Reason: fmt.Sprintf("healthy through every step (%s)", r.Policy)}
	}
	return Decision{Action: Advance, Reason: fmt.Sprintf("healthy at %d %% for %s", r.Percent(), r.Policy.Interval)}
}

// Promote is an operator's promotion: the next step, or completion when
// the next step is the last one (100 %) or the candidate was Standby.
func (r *Rollout) Promote(now time.Time) (complete bool) {
	if r.Step < 0 || r.Step+1 >= len(r.Policy.Steps)-1 {
		return true
	}
	r.Step++
	r.Since = now
	return false
}

// Advance moves to the next step at now.
func (r *Rollout) Advance(now time.Time) {
	r.Step++
	r.Since = now
}

// Due is when the step's hold ends (zero for a Standby candidate).
func (r Rollout) Due() time.Time {
	if r.Step < 0 {
		return time.Time{}
	}
	return r.Since.Add(r.Policy.Interval)
}

// Then says what comes next, for people.
func (r Rollout) Then() string {
	if r.Step < 0 {
		return fmt.Sprintf("%s waits Standby: `hotmod promote %s` routes every call to it, `hotmod rollback %s` drops it", r.Canary, r.Module, r.Module)
	}
	next := "promotion to 100 %"
	if r.Step+1 < len(r.Policy.Steps)-1 {
		next = fmt.Sprintf("%d %%", r.Policy.Steps[r.Step+1])
	}
	return fmt.Sprintf("%s at %s if healthy", next, r.Due().UTC().Format(time.RFC3339))
}

// Split is the number of buckets a call is placed in; a call goes to the
// canary when its bucket is below the rollout's Weight.
const Split = 10000

// KeyBucket places a key in one of Split buckets with a 64-bit FNV-1a hash:
// the same key always lands in the same bucket, in every process and after
// a restart, so a keyed caller stays on one version for a step, and on the
// canary once it got there (weights only grow).
func KeyBucket(key string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(key); i++ {
		h ^= uint64(key[i])
		h *= 1099511628211
	}
	return h % Split
}
