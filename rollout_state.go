package hotmod

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hotmod/hotmod/internal/process"
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
// sha256 of its bytes (a builtin has none), and the copy of those bytes
// kept in the state directory, if any.
type versionID struct {
	Version string `json:"version"`
	Sum     string `json:"sha256,omitempty"`
	Kept    string `json:"kept,omitempty"` // a file name in keptDir
}

type rolledBack struct {
	versionID
	Reason string    `json:"reason"`
	Time   time.Time `json:"time"`
}

func idOf(v *version) versionID { return versionID{Version: v.manifest.Version, Sum: v.inst.Sum()} }

// keptDir is where copies of artifacts are kept in the state directory.
const keptDir = "artifacts"

// keptName is the name v's artifact is kept under, or "" when it is not
// kept: a builtin, or a launch file (it names other files).
func keptName(v *version) string {
	if v.artifact == "" || v.inst.Sum() == "" || strings.HasSuffix(v.artifact, process.LaunchExt) {
		return ""
	}
	if strings.HasSuffix(v.artifact, process.ExecutableExt) {
		return v.inst.Sum() + process.ExecutableExt
	}
	return v.inst.Sum() + filepath.Ext(v.artifact)
}

// keep copies v's artifact into the state directory, once, so that after a
// restart v can come back even if its file was overwritten meanwhile (a new
// build written over the stable's file is how a canary usually arrives).
// Only modules whose replaced versions are kept are copied. r.mu must be
// held.
func (r *Registry) keep(v *version) {
	st, name := r.ro.store, keptName(v)
	if st == nil || name == "" || (r.policyFor(v.name).Kind == rollout.Immediate && r.keepFor(v.name).Versions == 0) {
		return
	}
	path := st.dir.File(filepath.Join(keptDir, name))
	if _, err := os.Stat(path); err == nil {
		return
	}
	data, err := os.ReadFile(v.artifact)
	if err != nil {
		return
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != v.inst.Sum() {
		return // the file changed since it was loaded: these are not v's bytes
	}
	err = os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = statedir.WriteAtomic(path, data, 0o700)
	}
	if err != nil {
		r.cfg.logger.Warn("artifact not kept in the state directory: after a restart this version comes back only if its file is still there", "module", v.name, "version", v.manifest.Version, "error", err)
	}
}

// idKept is idOf with the name of v's kept copy, when there is one.
func (r *Registry) idKept(v *version) versionID {
	id := idOf(v)
	if name := keptName(v); name != "" && r.ro.store != nil {
		if _, err := os.Stat(r.ro.store.dir.File(filepath.Join(keptDir, name))); err == nil {
			id.Kept = name
		}
	}
	return id
}

// restoreKept loads, from their kept copies, the saved stable versions that
// did not come back from the watched directory (their file now holds
// another build). Watch calls it after its first scan.
func (r *Registry) restoreKept(ctx context.Context) {
	r.mu.Lock()
	var paths []string
	if st := r.ro.store; st != nil {
		for _, s := range r.ro.saved {
			if s.Stable != nil && s.Stable.Kept != "" {
				paths = append(paths, st.dir.File(filepath.Join(keptDir, s.Stable.Kept)))
			}
		}
	}
	r.mu.Unlock()
	for _, p := range paths {
		if _, err := r.Load(ctx, p); err != nil {
			r.cfg.logger.Warn("a kept stable version could not be loaded again", "artifact", p, "error", err)
		}
	}
}

// pruneKept removes kept copies that doc no longer names.
func (st *rolloutStore) pruneKept(doc rolloutDoc) {
	named := map[string]bool{}
	for _, s := range doc.Modules {
		for _, id := range append([]*versionID{s.Stable, s.Canary}, ptrs(s.Standby)...) {
			if id != nil && id.Kept != "" {
				named[id.Kept] = true
			}
		}
	}
	entries, _ := os.ReadDir(st.dir.File(keptDir))
	for _, e := range entries {
		if !named[e.Name()] {
			_ = os.Remove(st.dir.File(filepath.Join(keptDir, e.Name())))
		}
	}
}

func ptrs(ids []versionID) []*versionID {
	out := make([]*versionID, len(ids))
	for i := range ids {
		out[i] = &ids[i]
	}
	return out
}

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
		if sb.Version == id.Version && sb.Sum == id.Sum {
			return true
		}
	}
	return false
}

type rolloutStore struct {
	dir  *statedir.Dir
	last []byte // what was written last: an unchanged state is not written again
}

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
			id := r.idKept(m.stable)
			s.Stable = &id
		}
		if m.run != nil && m.canary != nil {
			run, id := *m.run, r.idKept(m.canary)
			s.Run, s.Canary = &run, &id
		} else if m.await != nil && m.await.Run != nil {
			s.Run, s.Canary = m.await.Run, m.await.Canary
		}
		for _, v := range r.all {
			if v.name == name && v.state == StateStandby && v != m.canary {
				s.Standby = append(s.Standby, r.idKept(v))
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
	if err == nil && bytes.Equal(data, st.last) {
		return
	}
	if err == nil {
		err = st.dir.WriteFile(rolloutFile, data, 0o600)
	}
	if err == nil {
		st.last = data
		st.pruneKept(doc)
	}
	if err != nil {
		r.cfg.logger.Error("rollout state not saved: a restart would lose the rollouts, pins and rolled-back versions since the last save", "error", err)
	}
}
