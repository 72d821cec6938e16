package hotmod

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/hotmod/hotmod/internal/journal"
	"github.com/hotmod/hotmod/internal/native"
	"github.com/hotmod/hotmod/internal/statedir"
	"github.com/hotmod/hotmod/sdk"
)

// QuarantineEntry is an artifact the registry will not open: a process
// that had it loaded died, and the crash journal named it (see
// WithStateDir). Reason says why; Crash holds the last lines of the crash
// output, when they were seen.
type QuarantineEntry = journal.Entry

// startJournal reads what a previous process left in the state directory,
// quarantines what ended it, and starts this process's journal. A problem
// is logged: the registry works without a journal.
func (r *Registry) startJournal() {
	if r.cfg.stateDir == "" {
		return
	}
	sd, err := statedir.Open(r.cfg.stateDir)
	if err != nil {
		r.cfg.logger.Error("no crash journal", "error", err)
		r.cfg.stateDir = "" // unusable: nothing is quarantined either
		return
	}
	r.cfg.stateDir = sd.Path()
	findings, err := journal.Recover(sd.Path(), 0, nil)
	if err != nil {
		r.cfg.logger.Error("reading the crash journal of a previous run", "error", err)
	}
	for _, f := range findings {
		journal.Log(r.cfg.logger.Warn, f)
	}
	if r.journal, err = journal.Start(sd.Path()); err != nil {
		r.cfg.logger.Error("no crash journal", "error", err)
	}
}

// inflightCounter is the journal's call counter for a native or builtin
// version, or nil.
func (r *Registry) inflightCounter(v *version) *atomic.Int64 {
	if r.journal == nil || (v.transport != Native && v.transport != Builtin) {
		return nil
	}
	return r.journal.Counter(v.name, v.manifest.Version, string(v.transport), v.inst.Sum(), v.artifact)
}

// journalGate keeps quarantined artifacts out and journals every open.
type journalGate struct{ r *Registry }

var (
	_ native.Gate   = journalGate{}
	_ native.Prover = journalGate{}
)

func (g journalGate) Admit(sum, path string) error {
	dir := g.r.cfg.stateDir
	if err := journal.Forget(dir, path, sum); err != nil {
		g.r.cfg.logger.Warn("quarantine list", "error", err)
	}
	l, err := journal.Load(dir)
	if err != nil {
		return sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err)
	}
	if e := l.Find(sum); e != nil {
		what := ""
		if e.Module != "" {
			what = " (" + e.Module + "@" + e.Version + ")"
		}
		msg := fmt.Sprintf("quarantined%s since %s: %s", what, e.Since.Format("2006-01-02 15:04:05 MST"), e.Reason)
		if n := len(e.Crash); n > 0 {
			msg += "; the crash output ended: " + strings.Join(e.Crash[max(0, n-3):], " | ")
		}
		return sdk.Errorf(sdk.CodeIncompatible, "%s; replace the file, or run `hotmod quarantine lift %s` once it is safe", msg, sum[:12])
	}
	return nil
}

// Proven: bytes this executable opened before and ran for
// journal.SuspectWindow skip the probe (a restarted worker reloads its
// modules fast).
func (g journalGate) Proven(sum string) (module, version string, ok bool) {
	l, err := journal.Load(g.r.cfg.stateDir)
	if err != nil {
		return "", "", false
	}
	p, ok := l.Proven(sum, journal.HostID())
	return p.Module, p.Version, ok
}

func (g journalGate) Opening(o native.Opening) error {
	if g.r.journal == nil {
		return nil // no journal could be started; New logged why
	}
	if err := g.r.journal.Opening(o.Sum, o.Path, o.Copy, o.Module, o.Version); err != nil {
		// Opening it unrecorded would let a crash go unattributed.
		return sdk.Errorf(sdk.CodeInternal, "%s: not opened: %v", o.Path, err)
	}
	return nil
}

// Quarantined lists the artifacts the registry will not open (see
// WithStateDir); nil without a state directory.
func (r *Registry) Quarantined() ([]QuarantineEntry, error) {
	if r.cfg.stateDir == "" {
		return nil, nil
	}
	l, err := journal.Load(r.cfg.stateDir)
	if err != nil {
		return nil, err
	}
	return l.Entries, nil
}

// LiftQuarantine takes artifacts off the quarantine list: what is a sha256
// (at least 8 leading hex digits) or a path. Those that failed to load here
// because of it are loaded again in the background.
func (r *Registry) LiftQuarantine(what string) ([]QuarantineEntry, error) {
	if r.cfg.stateDir == "" {
		return nil, sdk.Errorf(sdk.CodeBadParams, "this registry has no state directory, so nothing is quarantined")
	}
	lifted, err := journal.Lift(r.cfg.stateDir, what)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeBadParams, "%v", err)
	}
	r.mu.Lock()
	var again []string
	for _, e := range lifted {
		if f, ok := r.failed[e.Path]; ok && strings.Contains(f.Reason, "quarantined") {
			again = append(again, e.Path)
		}
	}
	r.mu.Unlock()
	for _, p := range again {
		r.drainWG.Add(1)
		go func() {
			defer r.drainWG.Done()
			_, _ = r.Load(context.Background(), p)
		}()
	}
	return lifted, nil
}
