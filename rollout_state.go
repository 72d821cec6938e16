package hotmod

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/hotmod/hotmod/internal/rollout"
	"github.com/hotmod/hotmod/internal/statedir"
)

// rolloutFile is where rollout state is kept in the state directory.
const rolloutFile = "rollouts.json"

// savedModule is one module's routing as kept in the state directory.
type savedModule struct {
	Stable     *versionID       `json:"stable,omitempty"`
	Pinned     bool             `json:"pinned,omitempty"`
	Run        *rollout.Rollout `json:"rollout,omitempty"`
	Canary     *versionID       `json:"canary,omitempty"`
	Standby    []versionID      `json:"standby,omitempty"`
	RolledBack []rolledBack     `json:"rolled_back,omitempty"`
}

// versionID names a version: by its version and, for an artifact, the
// sha256 of its bytes (a builtin has none).
type versionID struct {
	Version string `json:"version"`
	Sum     string `json:"sha256,omitempty"`
}

type rolledBack struct {
	versionID
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

func idOf(v *version) versionID { return versionID{Version: v.manifest.Version, Sum: v.inst.Sum()} }

func (id *versionID) matches(v *version) bool {
	return id != nil && id.Version == v.manifest.Version && (id.Sum == "" || id.Sum == v.inst.Sum())
}

func (s *savedModule) hasStandby(v *version) bool {
	for i := range s.Standby {
		if s.Standby[i].matches(v) {
			return true
		}
	}
	return false
}

func (s *savedModule) hasStandbyID(id versionID) bool {
	for _, sb := range s.Standby {
		if sb == id {
			return true
		}
	}
	return false
}

type rolloutStore struct{ dir *statedir.Dir }

type rolloutDoc struct {
	Modules map[string]*savedModule `json:"modules"`
}

func openRolloutStore(path string) (*rolloutStore, map[string]*savedModule, error) {
	dir, err := statedir.Open(path)
	if err != nil {
		return nil, nil, err
	}
	st := &rolloutStore{dir: dir}
	data, err := dir.ReadFile(rolloutFile)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil, nil
	}
	if err != nil {
		return st, nil, err
	}
	var doc rolloutDoc
	if err := json.Unmarshal(data, &doc); err != nil {
		return st, nil, fmt.Errorf("%s: %v (move it away to start afresh)", dir.File(rolloutFile), err)
	}
	return st, doc.Modules, nil
}

// saveRollouts writes the rollout state: what serves, the rollout in
// progress, what is kept Standby and what was rolled back, with what was
// read at start and has not been matched yet. r.mu must be held (the
// writes are then in the order of the changes; a change is rare, and a
// write is a few milliseconds).
func (r *Registry) saveRollouts() {
	st := r.ro.store
	if st == nil {
		return
	}
	doc := rolloutDoc{Modules: map[string]*savedModule{}}
	for name, s := range r.ro.saved {
		doc.Modules[name] = s
	}
	for name, m := range r.ro.mods {
		if _, pending := r.ro.saved[name]; pending {
			doc.Modules[name].RolledBack = m.gone
			continue
		}
		s := &savedModule{Pinned: m.pinned, RolledBack: m.gone}
		if m.stable != nil {
			id := idOf(m.stable)
			s.Stable = &id
		}
		if m.run != nil && m.canary != nil {
			run, id := *m.run, idOf(m.canary)
			s.Run, s.Canary = &run, &id
		} else if m.await != nil && m.await.Run != nil {
			s.Run, s.Canary = m.await.Run, m.await.Canary
		}
		for _, v := range r.all {
			if v.name == name && v.state == StateStandby && v != m.canary {
				s.Standby = append(s.Standby, idOf(v))
			}
		}
		if m.await != nil {
			for _, id := range m.await.Standby {
				if !s.hasStandbyID(id) {
					s.Standby = append(s.Standby, id)
				}
			}
		}
		if s.Stable != nil || s.Run != nil || len(s.Standby) > 0 || len(s.RolledBack) > 0 {
			doc.Modules[name] = s
		}
	}
	data, err := json.MarshalIndent(doc, "", "  ")
	if err == nil {
		err = st.dir.WriteFile(rolloutFile, data, 0o600)
	}
	if err != nil {
		r.cfg.logger.Error("rollout state not saved: a restart would lose the rollouts, pins and rolled-back versions since the last save", "error", err)
	}
}
