package process

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hotmod/hotmod/internal/proctree"
	"github.com/hotmod/hotmod/internal/stages"
	"github.com/hotmod/hotmod/sdk"
)

// Config configures a Loader. Zero fields take the defaults given.
type Config struct {
	// PoolSize is how many child processes serve each loaded version; calls
	// go to the one with the fewest calls in flight. Default 1. More help
	// CPU-bound modules and modules that handle one call at a time (as a
	// single-threaded script does).
	PoolSize int
	// Logger receives the children's stderr, line by line, with the
	// module's name, and the supervisor's restarts. Default slog.Default().
	Logger *slog.Logger
	// OnFailed is called, once and on a goroutine of its own, when a
	// version loaded by this Loader has crashed MaxCrashes times within
	// CrashWindow: its children are stopped and its calls fail with
	// not_active. It may run before the Load that returned inst has been
	// seen by the caller's bookkeeping; Instance.Failed reports it too.
	OnFailed func(inst *Instance, err error)
	// CheckCopy, when set, is called with the sha256 (hex) of an executable
	// artifact's private copy before any child is started from it; an error
	// refuses the load. A host that verified the artifact's signature checks
	// here that what will run is what it verified.
	CheckCopy func(ctx context.Context, artifact, sum string) error
	// Grace is how long a cancelled call (its context ended) may take to
	// answer before its child is killed and replaced, and how long a closed
	// child may take to exit. Default 1s.
	Grace time.Duration
	// StartTimeout bounds a child's start and handshake. Default 10s.
	StartTimeout time.Duration
	// Heartbeat is how often an idle child is pinged, and how long it has
	// to answer before it is killed and replaced. Default 5s; negative
	// turns the heartbeat off.
	Heartbeat time.Duration
	// Backoff is the delay before the first restart after a crash; it
	// doubles with every crash within CrashWindow (up to 30s). Default 50ms.
	Backoff time.Duration
	// MaxCrashes within CrashWindow fail the version. Defaults 5 and 1m.
	MaxCrashes  int
	CrashWindow time.Duration
	// MaxNestedCalls bounds the calls to other modules (sdk.Call in its
	// methods) that one child may have in flight at once; each runs on a
	// goroutine of the host's. Further calls fail at once with code
	// overloaded. Default 1024.
	MaxNestedCalls int
	// AllowCommands are the programs a launch file may start besides those
	// inside its own directory: absolute paths, or names looked up in the
	// PATH when the Loader is made (see CheckCommands). Default none: a
	// launch file naming "python3" or "/bin/sh" is refused until that
	// program is allowed.
	AllowCommands []string
	// MaxSize bounds an executable artifact and every file a launch file
	// names, in bytes; a larger one is refused before it is read. Default
	// DefaultMaxSize.
	MaxSize int64
	// Dir is where private copies of executables are written before they
	// are started. On Linux they are unlinked at once and nothing stays
	// there. Default <user cache dir>/hotmod/process.
	Dir string
	// Contain makes every process a child starts, at any depth, end with
	// the child, even one that left its process group (setsid): the host
	// process becomes a child subreaper and, where it may create cgroups
	// (cgroup v2, delegated), each child starts in a cgroup of its own.
	// Both are process-wide settings of the host, so it is off by default;
	// without it a child's process group and its tree (read from /proc
	// while it runs, and what carries its marker after) are killed. See
	// package proctree.
	Contain bool

	cgroups *proctree.Cgroups // with Contain, where one could be made
}

const maxBackoff = 30 * time.Second

func (c Config) withDefaults() Config {
	if c.PoolSize <= 0 {
		c.PoolSize = 1
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Grace <= 0 {
		c.Grace = time.Second
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 10 * time.Second
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.Backoff <= 0 {
		c.Backoff = 50 * time.Millisecond
	}
	if c.MaxCrashes <= 0 {
		c.MaxCrashes = 5
	}
	if c.MaxNestedCalls <= 0 {
		c.MaxNestedCalls = 1024
	}
	if c.CrashWindow <= 0 {
		c.CrashWindow = time.Minute
	}
	if c.MaxSize <= 0 {
		c.MaxSize = DefaultMaxSize
	}
	c.MaxSize = min(c.MaxSize, maxExecutable)
	if c.Dir == "" {
		if cache, err := os.UserCacheDir(); err == nil {
			c.Dir = filepath.Join(cache, "hotmod", "process")
		} else {
			c.Dir = filepath.Join(os.TempDir(), fmt.Sprintf("hotmod-process-%d", os.Getuid()))
		}
	}
	if abs, err := filepath.Abs(c.Dir); err == nil {
		c.Dir = abs
	}
	return c
}

// Loader starts process modules. It is safe for concurrent use.
type Loader struct {
	cfg     Config
	allowed []allowedCommand // cfg.AllowCommands, resolved
}

// NewLoader returns a Loader with cfg (zero fields take their defaults).
func NewLoader(cfg Config) *Loader {
	l := &Loader{cfg: cfg.withDefaults()}
	l.allowed = resolveAllowed(l.cfg.AllowCommands)
	if l.cfg.Contain {
		if err := proctree.BecomeSubreaper(); err != nil {
			l.cfg.Logger.Warn("processes that process modules leave behind may outlive them", "reason", err)
		}
		cg, err := proctree.OpenCgroups()
		if err != nil {
			l.cfg.Logger.Debug("no cgroup per process module: its processes are found through /proc instead", "reason", err)
		} else {
			l.cfg.cgroups = cg
		}
	}
	return l
}

// Close gives back what NewLoader took: the cgroup its children's cgroups
// were made in, once they are all gone. Call it after every instance is
// closed.
func (l *Loader) Close() error {
	if l.cfg.cgroups == nil {
		return nil
	}
	return l.cfg.cgroups.Close()
}

// The artifact names this transport loads.
const (
	// ExecutableExt names an executable that speaks the protocol, such as
	// one built by `hotmod build --transport process`: NAME.process.
	ExecutableExt = ".process"
	// LaunchExt names a launch file: NAME.process.json says how to start a
	// program (a script and its interpreter, say) that speaks the protocol.
	LaunchExt = ".process.json"
)

// IsArtifact reports whether path names an artifact of this transport by
// its extension.
func IsArtifact(path string) bool {
	return strings.HasSuffix(path, ExecutableExt) || strings.HasSuffix(path, LaunchExt)
}

// Load starts the module at path — an executable, or a launch file when the
// name ends in .json — and returns it once PoolSize children have answered
// their handshake. ctx bounds the start (so does Config.StartTimeout). Every
// refusal is an *sdk.Error with code incompatible that says why.
func (l *Loader) Load(ctx context.Context, path string) (*Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, sdk.Errorf(sdk.CodeTimeout, "loading %s: %v", path, err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "process module %s: %v", path, err)
	}
	rec := stages.From(ctx)
	readStart := time.Now()
	var sp *spec
	if strings.HasSuffix(abs, ".json") {
		sp, err = l.launchSpec(abs)
	} else {
		sp, err = l.executableSpec(abs)
		if err == nil && l.cfg.CheckCopy != nil {
			if err = sp.wait(); err == nil {
				err = l.cfg.CheckCopy(ctx, abs, sp.sum)
			}
			if err != nil {
				sp.release()
			}
		}
	}
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeIncompatible, "process module %s: %v", path, err)
	}
	startAt := rec.Since(stages.Read, readStart)
	inst, err := l.start(ctx, sp)
	rec.Since(stages.Start, startAt)
	if err != nil {
		sp.wait()
		sp.release()
		return nil, sdk.Errorf(sdk.CodeIncompatible, "process module %s: %v", path, err)
	}
	return inst, nil
}

// start starts the pool and returns the instance.
func (l *Loader) start(ctx context.Context, sp *spec) (*Instance, error) {
	startedAt := time.Now()
	n := l.cfg.PoolSize
	type started struct {
		c   *child
		man sdk.Manifest
		err error
	}
	results := make([]started, n)
	var wg sync.WaitGroup
	for k := 0; k < n; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			c, man, err := startChild(ctx, l, sp, filepath.Base(sp.artifact))
			results[k] = started{c, man, err}
		}(k)
	}
	wg.Wait()
	var err error
	for k, r := range results {
		switch {
		case r.err != nil:
			err = r.err
		case err == nil && k > 0 && r.man.Fingerprint != results[0].man.Fingerprint:
			err = fmt.Errorf("its processes disagree on the manifest: %s@%s and %s@%s", results[0].man.Name, results[0].man.Version, r.man.Name, r.man.Version)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = sp.wait()
	}
	if err != nil {
		for _, r := range results {
			if r.c != nil {
				r.c.kill("the load failed")
				r.c.w.close()
				r.c.stdout.Close()
				<-r.c.exited
			}
		}
		return nil, err
	}
	inst := newInstance(l, sp, results[0].man)
	for k, r := range results {
		r.c.adopt(inst)
		inst.serve(inst.slots[k], r.c)
	}
	inst.log.Info("process module started", "artifact", sp.artifact, "processes", n,
		"pids", inst.PIDs(), "sum", sp.sum[:12], "took", time.Since(startedAt))
	return inst, nil
}

// spec says how to start a module's children.
type spec struct {
	artifact  string   // the path Load got
	path      string   // what is executed
	exeFile   *os.File // the private copy, passed as descriptor 3 (see privateCopy)
	argv0     string
	args      []string
	dir       string
	env       []string
	encodings []string // offered, in order of preference
	releaseFn func()
	once      sync.Once

	// sum is set, or sumErr, when hashing is closed (at once for a launch
	// file; an executable's copy is hashed while its children start).
	sum     string
	sumErr  error
	hashing chan struct{}
}

// wait waits until the sum is known.
func (sp *spec) wait() error {
	if sp.hashing != nil {
		<-sp.hashing
	}
	if sp.sumErr != nil {
		return fmt.Errorf("hashing the private copy: %v", sp.sumErr)
	}
	return nil
}

func (sp *spec) release() {
	sp.once.Do(func() {
		if sp.releaseFn != nil {
			sp.releaseFn()
		}
	})
}

// describe names what is started, for errors.
func (sp *spec) describe() string {
	if sp.argv0 == sp.path || sp.exeFile != nil || strings.HasPrefix(sp.argv0, "hotmod-process:") {
		return sp.artifact
	}
	return strings.Join(append([]string{sp.path}, sp.args...), " ")
}

// maxExecutable is the most that is ever copied or hashed of one file,
// whatever Config.MaxSize says.
const maxExecutable = 1 << 30

// executableSpec makes the private copy of the executable that its
// children are started from, and hashes the copy (while the children
// start: spec.wait).
func (l *Loader) executableSpec(path string) (*spec, error) {
	src, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	fi, err := src.Stat()
	if err != nil {
		return nil, err
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, errors.New("not a regular file")
	case fi.Size() > l.cfg.MaxSize:
		return nil, fmt.Errorf("%d bytes is larger than the %d allowed", fi.Size(), l.cfg.MaxSize)
	}
	if err := checkExecBit(path, fi); err != nil {
		return nil, err
	}
	var magic [8]byte
	n, _ := src.ReadAt(magic[:], 0)
	if !looksExecutable(magic[:n]) {
		return nil, fmt.Errorf("not an executable (it starts %q): build one with `hotmod build --transport process`, "+
			"or describe a script in a %s launch file", magic[:n], LaunchExt)
	}
	name := strings.TrimSuffix(filepath.Base(path), ExecutableExt)
	exe, err := privateCopy(l.cfg.Dir, name, src)
	if err != nil {
		return nil, fmt.Errorf("writing the private copy to %s: %v", l.cfg.Dir, err)
	}
	sp := &spec{
		artifact: path, path: exe.path, exeFile: exe.file, argv0: "hotmod-process:" + name, dir: filepath.Dir(path),
		env: childEnv(nil, []string{encCBOR, encJSON}), encodings: []string{encCBOR, encJSON},
		releaseFn: exe.release, hashing: make(chan struct{}),
	}
	go func() {
		defer close(sp.hashing)
		sp.sum, sp.sumErr = exe.hash()
	}()
	return sp, nil
}

// looksExecutable reports whether data starts like a program this system
// could start: ELF, Mach-O, PE, or a script with #!.
func looksExecutable(data []byte) bool {
	for _, magic := range [][]byte{
		{0x7f, 'E', 'L', 'F'}, {0xfe, 0xed, 0xfa, 0xce}, {0xfe, 0xed, 0xfa, 0xcf},
		{0xce, 0xfa, 0xed, 0xfe}, {0xcf, 0xfa, 0xed, 0xfe}, {'M', 'Z'}, {'#', '!'},
	} {
		if bytes.HasPrefix(data, magic) {
			return true
		}
	}
	return false
}

// writeExecutable copies src to a new file in dir with mode 0500 and
// returns its name. No process is forked while the file is open for
// writing: a child that inherited the descriptor would make starting the
// file fail with "text file busy" (ETXTBSY).
func writeExecutable(dir, name string, src *os.File) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	f, err := os.CreateTemp(dir, ".hotmod-"+name+"-*.tmp")
	if err != nil {
		return "", err
	}
	// File to file: copy_file_range on Linux, no bytes through user space.
	_, err = io.Copy(f, io.NewSectionReader(src, 0, maxExecutable))
	if err == nil {
		err = f.Chmod(0o500)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// executable is a private copy of an executable artifact.
type executable struct {
	path    string   // what to start
	file    *os.File // given to the child as its descriptor 3, when set
	release func()
}

// hash returns the sha256 (hex) of the copy's bytes.
func (e executable) hash() (string, error) {
	f := e.file
	if f == nil {
		var err error
		if f, err = os.Open(e.path); err != nil {
			return "", err
		}
		defer f.Close()
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, maxExecutable)); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// keptCopy is privateCopy where an open descriptor cannot be started: the
// file stays until the instance is closed.
func keptCopy(dir, name string, src *os.File) (executable, error) {
	path, err := writeExecutable(dir, name, src)
	if err != nil {
		return executable{}, err
	}
	return executable{path: path, release: func() { os.Remove(path) }}, nil
}

// childEnv is the host's environment without HOTMOD_PROCESS* variables,
// then extra, then the protocol's.
func childEnv(extra []string, encodings []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envProcess) {
			env = append(env, kv)
		}
	}
	env = append(env, extra...)
	return append(env,
		envProcess+"=1",
		fmt.Sprintf("%s=%d-%d", envVersions, minVersion, maxVersion),
		envEncodings+"="+strings.Join(encodings, ","),
	)
}

// launchFile is the JSON form of a NAME.process.json file.
type launchFile struct {
	// Command is the program to start: a path (relative to the launch
	// file's directory) or a name looked up in the host's PATH.
	Command string `json:"command"`
	// Args are its arguments.
	Args []string `json:"args"`
	// Protocol is the encoding the program speaks: "json" or "cbor"; empty
	// offers both and lets the program pick.
	Protocol string `json:"protocol"`
	// Env is extra environment for the program.
	Env map[string]string `json:"env"`
}

// maxLaunchFile bounds a launch file's size.
const maxLaunchFile = 1 << 20

// launchSpec reads a launch file.
func (l *Loader) launchSpec(path string) (*spec, error) {
	data, err := readLimited(path, maxLaunchFile)
	if err != nil {
		return nil, err
	}
	var lf launchFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&lf); err != nil {
		return nil, fmt.Errorf(`the launch file is not {"command": "...", "args": [...], "protocol": "json"}: %v`, err)
	}
	if dec.More() {
		return nil, errors.New("the launch file holds more than one JSON value")
	}
	if lf.Command == "" {
		return nil, errors.New(`the launch file has no "command"`)
	}
	var encodings []string
	switch lf.Protocol {
	case "":
		encodings = []string{encCBOR, encJSON}
	case encJSON, encCBOR:
		encodings = []string{lf.Protocol}
	default:
		return nil, fmt.Errorf(`the launch file's "protocol" is %q: use "json" or "cbor"`, lf.Protocol)
	}
	dir := filepath.Dir(path)
	cmdPath := lf.Command
	switch {
	case filepath.IsAbs(cmdPath):
	case strings.ContainsRune(cmdPath, '/') || strings.ContainsRune(cmdPath, filepath.Separator):
		cmdPath = filepath.Join(dir, cmdPath)
	default:
		if cmdPath, err = exec.LookPath(lf.Command); err != nil {
			return nil, fmt.Errorf("the command %q is not in the PATH (%v)", lf.Command, err)
		}
	}
	if err := l.checkCommand(dir, lf.Command, cmdPath); err != nil {
		return nil, err
	}
	var extra []string
	for k, v := range lf.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.HasPrefix(k, envProcess) {
			return nil, fmt.Errorf("the launch file's env sets %q, which is not allowed", k)
		}
		extra = append(extra, k+"="+v)
	}
	sum, err := launchSum(data, dir, l.cfg.MaxSize, append([]string{lf.Command}, lf.Args...))
	if err != nil {
		return nil, err
	}
	return &spec{
		artifact: path, path: cmdPath, argv0: lf.Command, args: lf.Args, dir: dir,
		env: childEnv(extra, encodings), encodings: encodings, sum: sum,
	}, nil
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}

// launchSum hashes the launch file and every file its command and
// arguments name (relative to its directory, or absolute), so that a
// changed script changes the sum.
func launchSum(launch []byte, dir string, limit int64, words []string) (string, error) {
	h := sha256.New()
	h.Write([]byte("hotmod process launch file\x00"))
	h.Write(launch)
	for _, w := range words {
		if w == "" || strings.HasPrefix(w, "-") {
			continue
		}
		p := w
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		data, err := readLimited(p, limit)
		if err != nil {
			return "", fmt.Errorf("reading %s: %v", w, err)
		}
		fh := sha256.Sum256(data)
		fmt.Fprintf(h, "\x00%s\x00%x", w, fh)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
