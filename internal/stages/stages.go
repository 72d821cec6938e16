// Package stages records how long each stage of loading a module version
// took: reading and hashing the artifact, preflight, probe, compile,
// instantiate, Init, the self-check, waiting for requirements, activation,
// draining the version it replaced. The loaders and the registry record
// into a Recorder carried by the load's context; the registry shows the
// result in its events and module listings, so "why did this swap take 4 s"
// has an answer.
package stages

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// The stage names the loaders and the registry use. Each transport records
// those that apply to it.
const (
	Read        = "read"        // read the artifact and hash it
	Signature   = "signature"   // the artifact's signature checked (where signatures are required)
	Preflight   = "preflight"   // native: build info checked against the host
	Probe       = "probe"       // native: opened first in a throwaway child process
	Open        = "open"        // native: plugin.Open in the host, the module looked up
	Compile     = "compile"     // wasm: compiled (or taken from the compilation cache)
	Instantiate = "instantiate" // wasm: the first guest started, its manifest read
	Start       = "start"       // process: children started, handshake done
	Validate    = "validate"    // registry: contracts and requirements checked
	Init        = "init"        // the module's Init hook
	Check       = "check"       // the module's self-check hook
	Wait        = "wait"        // waiting for requirements to become active
	Activate    = "activate"    // routing switched to the version
	Drain       = "drain"       // the version's calls in flight ended (it was replaced or removed)
)

// Stage is how long one stage took. In JSON it is {"stage": name,
// "seconds": 0.0012}.
type Stage struct {
	Name     string
	Duration time.Duration
}

type stageJSON struct {
	Name    string  `json:"stage"`
	Seconds float64 `json:"seconds"`
}

// MarshalJSON writes the duration in seconds.
func (s Stage) MarshalJSON() ([]byte, error) {
	return json.Marshal(stageJSON{s.Name, s.Duration.Seconds()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *Stage) UnmarshalJSON(b []byte) error {
	var j stageJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	s.Name, s.Duration = j.Name, time.Duration(j.Seconds*float64(time.Second))
	return nil
}

func (s Stage) String() string { return fmt.Sprintf("%s %s", s.Name, s.Duration) }

// Recorder collects stages in the order they end. The zero value is ready;
// a nil *Recorder records nothing. It is safe for concurrent use.
type Recorder struct {
	mu   sync.Mutex
	list []Stage
}

// Add records that stage name took d.
func (r *Recorder) Add(name string, d time.Duration) {
	if r == nil {
		return
	}
	r.mu.Lock()
	r.list = append(r.list, Stage{name, d})
	r.mu.Unlock()
}

// Since records that stage name began at start and ends now, and returns
// now, the start of the next stage.
func (r *Recorder) Since(name string, start time.Time) time.Time {
	now := time.Now()
	r.Add(name, now.Sub(start))
	return now
}

// Stages returns a copy of what was recorded.
func (r *Recorder) Stages() []Stage {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Stage(nil), r.list...)
}

type ctxKey struct{}

// With returns ctx carrying r, for the loaders to record into.
func With(ctx context.Context, r *Recorder) context.Context {
	return context.WithValue(ctx, ctxKey{}, r)
}

// From returns the Recorder ctx carries, or nil (which records nothing).
func From(ctx context.Context) *Recorder {
	r, _ := ctx.Value(ctxKey{}).(*Recorder)
	return r
}
