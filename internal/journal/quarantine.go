package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hotmod/hotmod/internal/statedir"
)

const (
	quarantineFile = "quarantine.json"
	quarantineLock = "quarantine.lock"
)

// StrikeLimit is how many deaths with an artifact among several suspects
// quarantine it; StrikeMemory is how long a strike counts.
const (
	StrikeLimit  = 2
	StrikeMemory = time.Hour
)

// TailKept is how many lines of crash output a quarantine entry keeps.
const TailKept = 20

// Entry is one quarantined artifact.
type Entry struct {
	Sum     string    `json:"sha256"`
	Path    string    `json:"path"`
	Module  string    `json:"module,omitempty"`
	Version string    `json:"version,omitempty"`
	Reason  string    `json:"reason"`
	Since   time.Time `json:"since"`
	Crash   []string  `json:"crash,omitempty"` // the last lines of the crash output
}

// Strike is a death an artifact was one of several suspects of.
type Strike struct {
	Count int       `json:"count"`
	Path  string    `json:"path"`
	Last  time.Time `json:"last"`
}

// List is the quarantine list of a state directory.
type List struct {
	Entries []Entry           `json:"entries"`
	Strikes map[string]Strike `json:"strikes,omitempty"` // by sha256
	Proofs  map[string]Proof  `json:"proven,omitempty"`  // by sha256; see Prove
}

// Find returns the entry for sum, or nil.
func (l *List) Find(sum string) *Entry {
	for i := range l.Entries {
		if l.Entries[i].Sum == sum {
			return &l.Entries[i]
		}
	}
	return nil
}

func (l *List) add(e Entry) bool {
	if l.Find(e.Sum) != nil {
		return false
	}
	l.Entries = append(l.Entries, e)
	delete(l.Strikes, e.Sum)
	delete(l.Proofs, e.Sum)
	return true
}

// Load reads the quarantine list of stateDir (empty when there is none).
func Load(stateDir string) (*List, error) {
	l := &List{}
	data, err := os.ReadFile(filepath.Join(stateDir, quarantineFile))
	if errors.Is(err, os.ErrNotExist) {
		return l, nil
	}
	if err != nil {
		return nil, fmt.Errorf("quarantine list: %w", err)
	}
	if err := json.Unmarshal(data, l); err != nil {
		return nil, fmt.Errorf("quarantine list %s is damaged (%v): fix or remove it", filepath.Join(stateDir, quarantineFile), err)
	}
	return l, nil
}

// Update changes the quarantine list under a lock, so that a supervisor and
// a worker (or two workers) do not lose each other's changes.
func Update(stateDir string, change func(*List) error) error {
	lf, err := os.OpenFile(filepath.Join(stateDir, quarantineLock), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("quarantine list: %w", err)
	}
	defer lf.Close()
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("quarantine list: lock: %w", err)
	}
	l, err := Load(stateDir)
	if err != nil {
		return err
	}
	if err := change(l); err != nil {
		return err
	}
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return err
	}
	return statedir.WriteAtomic(filepath.Join(stateDir, quarantineFile), append(data, '\n'), 0o600)
}

// Judge applies a verdict to the quarantine list of stateDir: sure suspects
// are quarantined, maybe ones get a strike (StrikeLimit strikes within
// StrikeMemory quarantine). It returns the entries it added.
func Judge(stateDir string, v Verdict, c Crash) ([]Entry, error) {
	var added []Entry
	tail := c.Tail
	if len(tail) > TailKept {
		tail = tail[len(tail)-TailKept:]
	}
	now := time.Now()
	err := Update(stateDir, func(l *List) error {
		for _, s := range v.Sure {
			e := Entry{Sum: s.Sum, Path: s.Path, Module: s.Module, Version: s.Version, Reason: s.Why, Since: now, Crash: tail}
			if l.add(e) {
				added = append(added, e)
			}
		}
		if l.Strikes == nil {
			l.Strikes = map[string]Strike{}
		}
		for sum, st := range l.Strikes {
			if now.Sub(st.Last) > StrikeMemory {
				delete(l.Strikes, sum)
			}
		}
		for _, s := range v.Maybe {
			if l.Find(s.Sum) != nil {
				continue
			}
			delete(l.Proofs, s.Sum) // a suspect again: probe it next time
			st := l.Strikes[s.Sum]
			st.Count++
			st.Path, st.Last = s.Path, now
			l.Strikes[s.Sum] = st
			if st.Count >= StrikeLimit {
				e := Entry{Sum: s.Sum, Path: s.Path, Module: s.Module, Version: s.Version, Since: now, Crash: tail,
					Reason: fmt.Sprintf("%d deaths in a row with it among the suspects; the last: %s", st.Count, s.Why)}
				if l.add(e) {
					added = append(added, e)
				}
			}
		}
		return nil
	})
	return added, err
}

// Lift removes the entries that what names: a sha256 (or a prefix of at
// least 8 hex digits) or an artifact path. It returns what it removed; none
// is an error that lists what is there.
func Lift(stateDir, what string) ([]Entry, error) {
	var lifted []Entry
	err := Update(stateDir, func(l *List) error {
		abs, _ := filepath.Abs(what)
		kept := l.Entries[:0]
		for _, e := range l.Entries {
			if (len(what) >= 8 && strings.HasPrefix(e.Sum, strings.ToLower(what))) || e.Path == what || e.Path == abs {
				lifted = append(lifted, e)
				delete(l.Strikes, e.Sum)
				continue
			}
			kept = append(kept, e)
		}
		l.Entries = kept
		if len(lifted) == 0 {
			var names []string
			for _, e := range l.Entries {
				names = append(names, Short(e.Sum)+" "+e.Path)
			}
			if len(names) == 0 {
				return fmt.Errorf("nothing is quarantined")
			}
			return fmt.Errorf("no quarantined artifact has the sha256 or path %q (quarantined: %s)", what, strings.Join(names, ", "))
		}
		return nil
	})
	return lifted, err
}

// Forget drops entries for path whose sha256 is not sum: the file was
// replaced, so its old bytes are of no concern.
func Forget(stateDir, path, sum string) error {
	l, err := Load(stateDir)
	if err != nil {
		return err
	}
	stale := false
	for _, e := range l.Entries {
		if e.Path == path && e.Sum != sum {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	return Update(stateDir, func(l *List) error {
		kept := l.Entries[:0]
		for _, e := range l.Entries {
			if e.Path != path || e.Sum == sum {
				kept = append(kept, e)
			}
		}
		l.Entries = kept
		return nil
	})
}

// Short is the first 12 digits of a sha256, as listings show it.
func Short(sum string) string { return sum[:min(12, len(sum))] }
