package hotmod

import (
	"fmt"
	"time"

	"github.com/hotmod/hotmod/internal/guard"
	"github.com/hotmod/hotmod/sdk"
)

// State is where a module version is in its lifecycle (see the package doc).
type State int

// The lifecycle states. The zero value, StateNone, is the "from" state of a
// version's first event.
const (
	StateNone State = iota
	StateLoaded
	StateValidated
	StateActive
	StateDraining
	StateUnloaded
	StateFailed
	// StateStandby: loaded and valid, kept ready but not routed — the
	// version a rollout replaced (rolling back to it is a routing change,
	// not a reload), or a candidate waiting to be promoted.
	StateStandby
)

var stateNames = [...]string{"None", "Loaded", "Validated", "Active", "Draining", "Unloaded", "Failed", "Standby"}

func (s State) String() string {
	if s < 0 || int(s) >= len(stateNames) {
		return fmt.Sprintf("State(%d)", int(s))
	}
	return stateNames[s]
}

// MarshalText writes the state's name, so JSON shows "Active", not 3.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// Transport is how an artifact is loaded and called.
type Transport string

// The transports.
const (
	// Native: a Go plugin (.so) opened in the host process.
	Native Transport = "native"
	// Builtin: a module compiled into the host and added with Register.
	Builtin Transport = "builtin"
	// Process: a child process (NAME.process, or a NAME.process.json launch
	// file for other languages) speaking the protocol in docs/process-protocol.md.
	Process Transport = "process"
	// Wasm: a WebAssembly module (.wasm) run by wazero in a sandbox; see
	// docs/wasm-abi.md.
	Wasm Transport = "wasm"
)

// ModuleInfo describes one version of a module, or an artifact that failed
// before its manifest could be read (then Name and Version are empty).
type ModuleInfo struct {
	Name      string        `json:"name"`
	Version   string        `json:"version"`
	Transport Transport     `json:"transport"`
	State     State         `json:"state"`
	Reason    string        `json:"reason,omitempty"`   // why it Failed, or what it waits for
	Artifact  string        `json:"artifact,omitempty"` // the file it came from
	Sum       string        `json:"sha256,omitempty"`   // of the artifact's bytes
	Since     time.Time     `json:"since"`              // when it entered State
	InFlight  int64         `json:"in_flight"`          // calls running now, abandoned ones included
	Manifest  *sdk.Manifest `json:"manifest,omitempty"`
	Guard     *GuardStats   `json:"guard,omitempty"`   // with WithGuards: breaker state and counters
	Stages    []Stage       `json:"stages,omitempty"`  // how long each stage of its load took, in order
	Runtime   *Runtime      `json:"runtime,omitempty"` // processes or guests it holds

	// Goroutines is how many goroutines a native or builtin version had
	// left running (started by its calls, outliving them) at the last
	// count (see GoroutineLimits); 0 for other transports.
	Goroutines int `json:"goroutines"`

	// Route is the share of calls to the plain module name this version
	// takes ("100 %", "90 %" for stable and "10 %" for a canary), "pinned",
	// or empty when plain calls do not reach it.
	Route string `json:"route,omitempty"`
}

// GuardStats is what the guards counted for one version: calls, failures,
// timeouts, abandoned calls, calls refused by the bulkhead or an open
// circuit, and the breaker's state.
type GuardStats = guard.Snapshot

// Ref is "name@version" (or the artifact's path when the name is unknown).
func (m ModuleInfo) Ref() string {
	if m.Name == "" {
		return m.Artifact
	}
	return m.Name + "@" + m.Version
}

// EventKind tells lifecycle transitions from rollout transitions.
type EventKind int

const (
	// EventLifecycle: a version moved From one state To another.
	EventLifecycle EventKind = iota
	// EventRollout: the routing of a module's plain name changed (a canary
	// started, moved a step, was promoted or rolled back; a pin). Module
	// and Version name the version it concerns, From and To are its state
	// before and after, Rollout says what happened.
	EventRollout
)

// Event is one lifecycle transition of one module version, or (Kind
// EventRollout) one rollout transition.
type Event struct {
	Kind      EventKind
	Rollout   *RolloutChange // with EventRollout
	Time      time.Time
	Module    string // empty when the artifact failed before its manifest was read
	Version   string
	Transport Transport
	Artifact  string
	From, To  State
	Err       error  // why, when To is Failed (or a drain that timed out)
	Reason    string // what it waits for, when To is Validated and it waits for requirements
	// Stages says how long each stage of the version's load took (and its
	// drain, when To is Unloaded); set when To is Active, Draining,
	// Unloaded or Failed.
	Stages []Stage

	end bool // the last event a subscriber gets (Close)
}

func (e Event) String() string {
	ref := e.Module + "@" + e.Version
	if e.Module == "" {
		ref = e.Artifact
	}
	if e.Kind == EventRollout && e.Rollout != nil {
		return fmt.Sprintf("%s rollout %s: %s", ref, e.Rollout.Action, e.Rollout.Detail)
	}
	s := fmt.Sprintf("%s %s → %s", ref, e.From, e.To)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	} else if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}
