package native

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"plugin"
	"reflect"
	"strings"
	"time"

	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/sdk"
)

// Loader loads .so artifacts into this process. One per process is expected,
// but several are safe: what has been opened is process-wide state (plugins
// can never be unloaded), so the list of opened plugins that probes replay is
// kept for the whole process, and loads are serialized process-wide.
type Loader struct {
	dir    string
	logger *slog.Logger

	// Gate, if set, decides whether an artifact may be loaded and hears of
	// each open before it happens (a crash journal; see Gate).
	Gate Gate
}

// Gate is asked by Load before it checks an artifact (Admit) and told right
// before plugin.Open maps it into this process (Opening); an error from
// either refuses the artifact, and is what Load returns.
type Gate interface {
	Admit(sum, path string) error
	Opening(Opening) error
}

// A Prover is a Gate that also knows artifacts proven safe to open without
// the probe: this very executable opened them before and ran on (say, a
// worker restarted after another module crashed it). Proven returns the
// module and version the artifact declared then.
type Prover interface {
	Proven(sum string) (module, version string, ok bool)
}

// Opening is an artifact about to be opened: its sha256, its path, the
// private copy that is opened, and the manifest the probe read.
type Opening struct {
	Sum, Path, Copy string
	Module, Version string
}

// NewLoader returns a Loader that keeps private, content-addressed copies of
// the artifacts it loads in dir (created with mode 0700 when missing; "" means
// <user cache dir>/hotmod/native). logger may be nil (slog.Default()).
//
// The copies are what the process has mapped and what probes re-open; a copy
// that disappears (say dir is removed) is restored from an open descriptor
// the process keeps for each, into the directory of the Loader that loads next.
func NewLoader(dir string, logger *slog.Logger) *Loader {
	if dir == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			dir = filepath.Join(cache, "hotmod", "native")
		} else {
			dir = filepath.Join(os.TempDir(), fmt.Sprintf("hotmod-native-%d", os.Getuid()))
		}
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if logger == nil {
		logger = slog.Default()
	}
	return &Loader{dir: dir, logger: logger}
}

// opened is one artifact this process has handed to plugin.Open.
type opened struct {
	sum    string
	path   string   // private copy, as passed to plugin.Open; the replay path
	origin string   // the path the caller gave
	file   *os.File // the copy's inode, kept to restore a removed copy
	// Set when the open succeeded and Module was usable; otherwise err is the
	// refusal, returned again for the same bytes.
	mod      *sdk.Module
	manifest sdk.Manifest
	err      error
	// failedOpen: plugin.Open itself failed here; the probe replays it without
	// requiring success, so the child's state matches the host's.
	failedOpen bool
}

// Process-wide state: the plugins this process has opened, in order, guarded
// by loadSem (a one-slot semaphore rather than a mutex, so that a Load
// waiting behind a slow probe gives up when its context ends).
var (
	loadSem   = make(chan struct{}, 1)
	openList  []*opened
	openBySum = map[string]*opened{}
)

func lockLoads(ctx context.Context) error {
	select {
	case loadSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func unlockLoads() { <-loadSem }

// ProbeTimeout caps how long the probe child may take, whatever the context
// allows.
var ProbeTimeout = 30 * time.Second

// Load checks the artifact at path and, when it is safe, opens it in this
// process and returns the module it exports. See the package documentation
// for the steps. Every refusal is an *sdk.Error with code incompatible
// (errors.Is(err, sdk.ErrIncompatible)); the host is unaffected by it.
func (l *Loader) Load(ctx context.Context, path string) (*Instance, error) {
	return l.LoadBytes(ctx, path, nil)
}

// LoadBytes is Load of data, the artifact's bytes already read from path
// (and checked, say, against a signature): the file is not read again, so
// what is loaded is what was checked. nil data reads path.
func (l *Loader) LoadBytes(ctx context.Context, path string, data []byte) (*Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	if data == nil {
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, sdk.Errorf(sdk.CodeIncompatible, "reading native module: %v", err)
		}
	}
	h := sha256.Sum256(data)
	sum := hex.EncodeToString(h[:])
	rec := stages.From(ctx)
	at := rec.Since(stages.Read, start)

	if err := lockLoads(ctx); err != nil {
		return nil, sdk.Errorf(sdk.CodeTimeout, "loading %s: %v", path, err)
	}
	defer unlockLoads()

	if l.Gate != nil { // even bytes already open here: a quarantine says not to serve them
		if err := l.Gate.Admit(sum, path); err != nil {
			return nil, err
		}
	}
	if o := openBySum[sum]; o != nil {
		if o.err != nil {
			return nil, o.err
		}
		return l.instance(o), nil
	}

	rep, err := preflight(bytes.NewReader(data), path, hostBuildInfo())
	at = rec.Since(stages.Preflight, at)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%v", err)
	}
	if len(rep.Problems) > 0 {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "%s cannot be loaded as a native module: %s", path, strings.Join(rep.Problems, "; "))
	}

	private, file, err := l.writeCopy(sum, data)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeInternal, "native module %s: private copy: %v", path, err)
	}
	keep := false
	defer func() {
		if !keep { // refused before plugin.Open: the copy is of no use
			file.Close()
			os.Remove(private)
		}
	}()

	probeStart := time.Now()
	var man sdk.Manifest
	proven := false
	if p, ok := l.Gate.(Prover); ok {
		man.Name, man.Version, proven = p.Proven(sum)
	}
	if !proven {
		if man, err = l.probeReplaying(ctx, private); err != nil {
			return nil, refusal(path, err, loadedArtifacts())
		}
	}
	at = rec.Since(stages.Probe, probeStart)
	probeTime := at.Sub(probeStart)
	if l.Gate != nil {
		if err := l.Gate.Opening(Opening{Sum: sum, Path: path, Copy: private, Module: man.Name, Version: man.Version}); err != nil {
			return nil, err
		}
	}

	// The probe passed: open it here. From now on the plugin is part of the
	// process for good, whatever happens next, so it joins the replay list.
	o := &opened{sum: sum, path: private, file: file, origin: path}
	keep = true
	openList = append(openList, o)
	openBySum[sum] = o

	p, err := openPlugin(private)
	if err != nil {
		o.failedOpen = true
		o.err = refusal(path, &probeError{stage: "host-open", msg: openMessage(err)}, loadedArtifacts())
		return nil, o.err
	}
	mod, err := lookupModule(p)
	if err == nil {
		err = mod.Validate()
	}
	rec.Since(stages.Open, at)
	if err != nil {
		o.err = refusal(path, err, loadedArtifacts())
		return nil, o.err
	}
	o.mod, o.manifest = mod, mod.Manifest()
	l.logger.Info("native module loaded",
		"module", o.manifest.Name, "version", o.manifest.Version, "path", path,
		"sum", sum[:12], "probe", probeTime, "proven", proven, "took", time.Since(start))
	return l.instance(o), nil
}

// loadedArtifacts lists the artifacts this process opened successfully, as
// (original path, private copy); the caller holds loadSem.
func loadedArtifacts() [][2]string {
	var out [][2]string
	for _, o := range openList {
		if o.mod != nil {
			out = append(out, [2]string{o.origin, o.path})
		}
	}
	return out
}

func (l *Loader) instance(o *opened) *Instance {
	return &Instance{mod: o.mod, manifest: o.manifest, sum: o.sum, logger: l.logger,
		tag: goroutines.NewTag(o.manifest.Name + "@" + o.manifest.Version)}
}

// writeCopy writes data to <dir>/<sum>.so (temporary name, then rename,
// mode 0500) and returns the path and the file opened read-only.
func (l *Loader) writeCopy(sum string, data []byte) (string, *os.File, error) {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return "", nil, err
	}
	path := filepath.Join(l.dir, sum+".so")
	tmp, err := os.CreateTemp(l.dir, "."+sum+".*.tmp")
	if err != nil {
		return "", nil, err
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o500)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	return path, f, nil
}

// probeReplaying probes candidate after the plugins this process has open.
// A private copy removed between replayList's check and the child's open
// (someone cleaning the loader's directory) fails the replay; then the
// copies are restored and the probe runs again, at most replayRetries
// times.
func (l *Loader) probeReplaying(ctx context.Context, candidate string) (sdk.Manifest, error) {
	for try := 0; ; try++ {
		replay := l.replayList()
		if testHookBeforeProbe != nil {
			testHookBeforeProbe(candidate)
		}
		man, err := probe(ctx, replay, candidate)
		var pe *probeError
		if err == nil || try == replayRetries || !errors.As(err, &pe) || pe.stage != "replay" || !anyGone(replay) {
			return man, err
		}
		l.logger.Warn("native: a private copy of a loaded module vanished during the probe; probing again", "candidate", candidate)
	}
}

// replayRetries bounds probeReplaying's retries.
const replayRetries = 2

// testHookBeforeProbe, when set by a test, runs between the replay list
// and the probe (with the loads locked).
var testHookBeforeProbe func(candidate string)

func anyGone(replay []replayEntry) bool {
	for _, r := range replay {
		if _, err := os.Stat(r.Path); err != nil {
			return true
		}
	}
	return false
}

// replayList returns what the probe must open before the candidate,
// restoring private copies that were removed or replaced since they were
// opened. Called with the loads locked.
func (l *Loader) replayList() []replayEntry {
	list := make([]replayEntry, 0, len(openList))
	for _, o := range openList {
		if fi, err := os.Stat(o.path); err != nil || !sameFile(fi, o.file) {
			if path, err := l.restore(o); err != nil {
				l.logger.Warn("native: cannot restore the private copy of a loaded module; the probe will fail on it",
					"path", o.path, "error", err)
			} else {
				l.logger.Warn("native: restored the private copy of a loaded module", "was", o.path, "now", path)
				o.path = path
			}
		}
		list = append(list, replayEntry{Path: o.path, MustOpen: !o.failedOpen})
	}
	return list
}

func sameFile(fi os.FileInfo, f *os.File) bool {
	fs, err := f.Stat()
	return err == nil && os.SameFile(fi, fs)
}

// restore copies a loaded plugin's bytes from its kept descriptor to this
// loader's directory.
func (l *Loader) restore(o *opened) (string, error) {
	data, err := io.ReadAll(io.NewSectionReader(o.file, 0, 1<<40))
	if err != nil {
		return "", err
	}
	path, f, err := l.writeCopy(o.sum, data)
	if err != nil {
		return "", err
	}
	// Same bytes, new inode: keep the new one, so the next replay finds it.
	// (The process's mapping keeps the old inode alive on its own.)
	o.file.Close()
	o.file = f
	return path, nil
}

// openPlugin is plugin.Open with a recovered panic (a plugin's init panicking
// in the host after it did not in the probe) turned into an error.
func openPlugin(path string) (p *plugin.Plugin, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("its init panicked: %v", r)
		}
	}()
	return plugin.Open(path)
}

// lookupModule finds the exported variable Module and checks its type.
func lookupModule(p *plugin.Plugin) (*sdk.Module, error) {
	const declare = "declare `var Module = sdk.New(name, version)…` in its main package"
	sym, err := p.Lookup("Module")
	if err != nil {
		return nil, &probeError{stage: "lookup", msg: "it has no exported variable Module: " + declare}
	}
	switch m := sym.(type) {
	case **sdk.Module:
		if *m == nil {
			return nil, &probeError{stage: "lookup", msg: "its variable Module is nil: " + declare}
		}
		return *m, nil
	case *sdk.Module:
		return m, nil
	}
	t := reflect.TypeOf(sym)
	what := "a " + t.String()
	if t.Kind() == reflect.Pointer {
		what = "a variable of type " + t.Elem().String()
	}
	return nil, &probeError{stage: "lookup", msg: fmt.Sprintf("its exported Module is %s, not *sdk.Module: %s", what, declare)}
}
