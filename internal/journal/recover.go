package journal

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxCrashLines is how much of the runtime's crash output is read.
const maxCrashLines = 400

// Dead is the journal a process left behind when it ended.
type Dead struct {
	Dir   string
	PID   int
	Clean bool // it ended through Close (a clean run leaves no directory, unless removal failed)
	Opens []Open
	Calls []InFlight // versions with calls running when it ended
	// What the Go runtime wrote of a fatal crash, and when (see Start).
	CrashOutput []string
	CrashTime   time.Time
}

// Open is a native artifact the process opened.
type Open struct {
	Time            time.Time
	Sum, Path, Copy string
	Module, Version string
	Settled         bool // it had run for SuspectWindow
}

// InFlight is a version that had calls running.
type InFlight struct {
	Module, Version, Transport, Sum, Path string
	Calls                                 int64
}

// Collect returns the journals under stateDir whose processes are gone.
func Collect(stateDir string) ([]Dead, error) {
	root := filepath.Join(stateDir, dirName)
	entries, err := os.ReadDir(root)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("crash journal: %w", err)
	}
	var out []Dead
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if d, ok := read(dir); ok {
			out = append(out, d)
		}
	}
	return out, nil
}

// read reads one journal, unless its writer still holds its lock.
func read(dir string) (Dead, bool) {
	d := Dead{Dir: dir}
	pid, _, _ := strings.Cut(filepath.Base(dir), "-")
	d.PID, _ = strconv.Atoi(pid)
	f, err := os.Open(filepath.Join(dir, loadsFile))
	if err != nil {
		return d, true // a journal cut short before it was usable: nothing in it
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return d, false // its process lives
	}
	if _, err := os.Stat(filepath.Join(dir, cleanFile)); err == nil {
		d.Clean = true
	}
	bySum := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec record
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue // a line cut by the crash
		}
		switch rec.Op {
		case "open":
			bySum[rec.Sum] = len(d.Opens)
			d.Opens = append(d.Opens, Open{Time: rec.Time, Sum: rec.Sum, Path: rec.Path, Copy: rec.Copy, Module: rec.Module, Version: rec.Version})
		case "settled":
			if i, ok := bySum[rec.Sum]; ok {
				d.Opens[i].Settled = true
			}
		}
	}
	if out, err := os.ReadFile(filepath.Join(dir, crashFile)); err == nil && len(out) > 0 {
		lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
		d.CrashOutput = lines[max(0, len(lines)-maxCrashLines):]
		if fi, err := os.Stat(filepath.Join(dir, crashFile)); err == nil {
			d.CrashTime = fi.ModTime()
		}
	}
	mem, _ := os.ReadFile(filepath.Join(dir, inflightFile))
	slots, _ := os.ReadFile(filepath.Join(dir, slotsFile))
	for _, line := range bytes.Split(slots, []byte("\n")) {
		var s slot
		if json.Unmarshal(line, &s) != nil || s.Slot < 0 || (s.Slot+1)*8 > len(mem) {
			continue
		}
		if n := int64(binary.LittleEndian.Uint64(mem[s.Slot*8:])); n > 0 {
			d.Calls = append(d.Calls, InFlight{Module: s.Module, Version: s.Version, Transport: s.Transport, Sum: s.Sum, Path: s.Path, Calls: n})
		}
	}
	return d, true
}

// Remove deletes the journal.
func (d Dead) Remove() error { return os.RemoveAll(d.Dir) }

// Crash is what is known of how a process ended, beside its journal.
type Crash struct {
	Who    string    // what died: "the worker"; "" is "the process"
	Died   time.Time // zero when unknown
	Status string    // "exit status 2", "signal: killed"; "" when unknown
	Tail   []string  // the last lines of its stderr, oldest first
}

// Suspect is an artifact that may have ended the process.
type Suspect struct {
	Sum, Path, Module, Version string
	Why                        string
}

// Verdict names who ended the process. Sure suspects are quarantined at
// once; Maybe ones get a strike (see List.Strike).
type Verdict struct {
	Sure, Maybe []Suspect
	Summary     string // the crash's first telling line, or its status
	Builtin     string // a builtin module whose call was running, when that is all there is
}

// Attribute names the suspects of a process's end, in this order: native
// modules whose code is in the crash output (a panic's goroutine frames);
// the one native version whose call was running; and, when neither names
// one, every native artifact opened within SuspectWindow before the end
// (Maybe: a strike each).
//
// A process killed by SIGKILL names no one: that is the kernel's OOM killer
// or an operator, not a module's doing, and a guess would quarantine
// modules that did nothing.
func Attribute(d Dead, c Crash) Verdict {
	v := Verdict{Summary: summary(c)}
	if c.Status == "signal: killed" {
		return v
	}
	for i := range d.Opens {
		if !hasFrames(c.Tail) {
			break // no goroutine frames: reading symbol tables would find nothing
		}
		o := &d.Opens[i]
		if p := pluginPath(o.Copy, o.Path); p != "" && mentions(c.Tail, p) {
			v.Sure = append(v.Sure, o.suspect(fmt.Sprintf("%s; its code (%s) is in the crash output", o.died(c), p), c))
		}
	}
	if len(v.Sure) > 0 {
		return v
	}
	var native []InFlight
	for _, call := range d.Calls {
		if call.Transport == "native" {
			native = append(native, call)
		} else if v.Builtin == "" {
			v.Builtin = call.Module + "@" + call.Version
		}
	}
	if len(native) == 1 {
		n := native[0]
		v.Sure = append(v.Sure, Suspect{Sum: n.Sum, Path: n.Path, Module: n.Module, Version: n.Version,
			Why: fmt.Sprintf("%s died during a call of %s@%s, the only native call running: %s", who(c), n.Module, n.Version, v.Summary)})
		return v
	}
	for _, n := range native {
		v.Maybe = append(v.Maybe, Suspect{Sum: n.Sum, Path: n.Path, Module: n.Module, Version: n.Version,
			Why: fmt.Sprintf("%s died during a call of %s@%s, with other calls running: %s", who(c), n.Module, n.Version, v.Summary)})
	}
	for i := range d.Opens {
		o := &d.Opens[i]
		recent := !o.Settled
		if !c.Died.IsZero() {
			recent = c.Died.Sub(o.Time) <= SuspectWindow
		}
		if recent && !hasSum(v.Maybe, o.Sum) {
			v.Maybe = append(v.Maybe, o.suspect(o.died(c), c))
		}
	}
	return v
}

func who(c Crash) string {
	if c.Who == "" {
		return "the process"
	}
	return c.Who
}

func hasSum(s []Suspect, sum string) bool {
	for _, x := range s {
		if x.Sum == sum {
			return true
		}
	}
	return false
}

func (o *Open) suspect(why string, c Crash) Suspect {
	return Suspect{Sum: o.Sum, Path: o.Path, Module: o.Module, Version: o.Version, Why: why + ": " + summary(c)}
}

// died says how long after its opening the process died.
func (o *Open) died(c Crash) string {
	who := who(c)
	if c.Died.IsZero() {
		if o.Settled {
			return who + " died after it was loaded"
		}
		return fmt.Sprintf("%s died less than %s after it was loaded", who, SuspectWindow)
	}
	return fmt.Sprintf("%s died %.1fs after it was loaded", who, c.Died.Sub(o.Time).Seconds())
}

// summary is the crash's first "panic:" or "fatal error:" line, else its
// status.
func summary(c Crash) string {
	for _, l := range c.Tail {
		if strings.HasPrefix(l, "panic: ") || strings.HasPrefix(l, "fatal error: ") {
			return strings.TrimSpace(l)
		}
	}
	if c.Status != "" {
		return c.Status + " (nothing on stderr says why)"
	}
	return "it ended without a clean shutdown"
}

// hasFrames reports whether tail holds a goroutine traceback.
func hasFrames(tail []string) bool {
	for _, l := range tail {
		if strings.HasPrefix(l, "goroutine ") {
			return true
		}
	}
	return false
}

// mentions reports whether a goroutine frame in tail runs code of the
// plugin whose main package is path p ("plugin/unnamed-…").
func mentions(tail []string, p string) bool {
	for _, l := range tail {
		if strings.HasPrefix(l, p+".") || strings.Contains(l, "created by "+p+".") {
			return true
		}
	}
	return false
}

// pluginPath is the symbol prefix of an artifact's main package (the
// plugin path the linker gave it), read from the symbol that holds its
// Module variable. It reads the private copy, or the artifact when it still
// has the same bytes; "" when neither is there.
func pluginPath(copyPath, path string) string {
	for _, p := range []string{copyPath, path} {
		if p == "" {
			continue
		}
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		syms, err := f.Symbols()
		f.Close()
		if err != nil {
			continue
		}
		for _, s := range syms {
			if elf.ST_TYPE(s.Info) != elf.STT_OBJECT || !strings.HasSuffix(s.Name, ".Module") || strings.ContainsAny(s.Name, ":(*") {
				continue
			}
			pkg := strings.TrimSuffix(s.Name, ".Module")
			if strings.HasSuffix(pkg, "/sdk") {
				continue
			}
			return pkg
		}
	}
	return ""
}

// Finding is what Recover made of one dead process's journal.
type Finding struct {
	PID         int
	Verdict     Verdict
	Quarantined []Entry
}

// Recover reads the journals of dead processes under stateDir, attributes
// each death (crash, when not nil, is what is known of process pid's end),
// applies the verdicts to the quarantine list and removes the journals.
// Journals of clean ends are removed without a verdict.
func Recover(stateDir string, pid int, crash *Crash) ([]Finding, error) {
	dead, err := Collect(stateDir)
	if err != nil {
		return nil, err
	}
	var out []Finding
	var errs []error
	for _, d := range dead {
		if d.Clean {
			_ = d.Remove()
			continue
		}
		c := Crash{}
		if crash != nil && d.PID == pid {
			c = *crash
		}
		if len(c.Tail) == 0 && len(d.CrashOutput) > 0 { // no one kept its stderr
			c.Tail = d.CrashOutput
			if c.Died.IsZero() {
				c.Died = d.CrashTime
			}
		}
		v := Attribute(d, c)
		added, err := Judge(stateDir, v, c)
		if err != nil {
			errs = append(errs, err)
			continue // keep the journal for the next try
		}
		out = append(out, Finding{PID: d.PID, Verdict: v, Quarantined: added})
		_ = d.Remove()
	}
	return out, errors.Join(errs...)
}

// Log logs what Recover made of a dead process with log (a slog level
// method).
func Log(log func(string, ...any), f Finding) {
	args := []any{"pid", f.PID, "crash", f.Verdict.Summary}
	for _, e := range f.Quarantined {
		log("quarantined", append(args, "artifact", e.Path, "sha256", Short(e.Sum), "module", e.Module, "reason", e.Reason)...)
	}
	if len(f.Quarantined) == 0 {
		var maybe []string
		for _, s := range f.Verdict.Maybe {
			maybe = append(maybe, s.Path)
		}
		if f.Verdict.Builtin != "" {
			args = append(args, "builtin_call_running", f.Verdict.Builtin)
		}
		log("a previous process died; nothing quarantined yet", append(args, "suspects", strings.Join(maybe, ", "))...)
	}
}
