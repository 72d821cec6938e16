package journal

import (
	"bytes"
	"debug/elf"
	"os"
	"sync"
	"time"
)

// A native artifact that a process of this very executable opened and then
// ran for SuspectWindow without dying is proven: the next process of the
// same executable may open it without the trial load in a child (the
// probe), which is most of a restart's time. A proof is kept per sha256 in
// the quarantine list, names the executable by its Go build ID, and is
// dropped when the artifact gets a strike or is quarantined.

// MaxProven bounds the proofs kept; the oldest go first.
const MaxProven = 256

// Proof says that Host (an executable's Go build ID) ran the artifact.
type Proof struct {
	Module  string    `json:"module"`
	Version string    `json:"version"`
	Host    string    `json:"host"`
	Since   time.Time `json:"since"`
}

// Proven returns the proof that an executable with build ID host ran sum.
func (l *List) Proven(sum, host string) (Proof, bool) {
	p, ok := l.Proofs[sum]
	return p, ok && host != "" && p.Host == host && l.Find(sum) == nil
}

func (l *List) prove(sum string, p Proof) {
	if l.Proofs == nil {
		l.Proofs = map[string]Proof{}
	}
	l.Proofs[sum] = p
	for len(l.Proofs) > MaxProven {
		oldest := ""
		for s, q := range l.Proofs {
			if oldest == "" || q.Since.Before(l.Proofs[oldest].Since) {
				oldest = s
			}
		}
		delete(l.Proofs, oldest)
	}
}

// Prove records that this executable ran sum for SuspectWindow.
func Prove(stateDir, sum, module, version string) error {
	host := HostID()
	if host == "" {
		return nil
	}
	return Update(stateDir, func(l *List) error {
		if l.Find(sum) == nil {
			if _, struck := l.Strikes[sum]; !struck {
				l.prove(sum, Proof{Module: module, Version: version, Host: host, Since: time.Now()})
			}
		}
		return nil
	})
}

var hostID = sync.OnceValue(func() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	return buildID(exe)
})

// HostID is this executable's Go build ID, "" when it cannot be read (then
// nothing is proven).
func HostID() string { return hostID() }

// buildID reads the Go build ID note of an ELF executable.
func buildID(path string) string {
	f, err := elf.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	s := f.Section(".note.go.buildid")
	if s == nil {
		return ""
	}
	data, err := s.Data()
	if err != nil || len(data) < 16 {
		return ""
	}
	// An ELF note: namesz, descsz, type, the name "Go\x00\x00", the desc.
	namesz := f.ByteOrder.Uint32(data[0:4])
	descsz := f.ByteOrder.Uint32(data[4:8])
	name := data[12:]
	if namesz != 4 || len(name) < 4+int(descsz) || !bytes.Equal(name[:4], []byte("Go\x00\x00")) {
		return ""
	}
	return string(name[4 : 4+descsz])
}
