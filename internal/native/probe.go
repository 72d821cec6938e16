package native

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"plugin"
	"runtime"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// The probe protocol between the host (parent) and its re-executed self
// (child): the parent sets probeEnv=probeProtocol, writes a probeRequest as
// JSON on the child's stdin and reads a probeResult as JSON from the child's
// file descriptor 3. The child's stdout is discarded (a module's init may
// print); its stderr is kept for crash reports.
const (
	probeEnv      = "HOTMOD_NATIVE_PROBE"
	probeProtocol = "1"
)

type probeRequest struct {
	Replay    []replayEntry `json:"replay"`
	Candidate string        `json:"candidate"`
}

type replayEntry struct {
	Path string `json:"path"`
	// MustOpen is false for a plugin whose plugin.Open failed in the host:
	// the child repeats the failure so that its state matches.
	MustOpen bool `json:"must_open"`
}

type probeResult struct {
	Manifest *sdk.Manifest `json:"manifest,omitempty"`
	Stage    string        `json:"stage,omitempty"`
	Error    string        `json:"error,omitempty"`
}

// probeError is a refusal found by the probe (or by the host's own open):
// stage is "replay", "open", "lookup", "validate", "crash", "timeout" or
// "host-open"; msg has no path in it.
type probeError struct {
	stage, msg string
}

func (e *probeError) Error() string { return e.stage + ": " + e.msg }

func init() {
	if os.Getenv(probeEnv) != probeProtocol {
		return
	}
	// This process is a probe child: do the probe and exit before the host's
	// own init functions, main or TestMain run.
	os.Exit(probeChild(os.Stdin, os.NewFile(3, "probe-result")))
}

// probeChild opens the replay list and the candidate, and reports on out.
// It returns the exit code: 0 for a usable candidate, 1 for a refusal, 3 when
// it cannot report at all. A crash in plugin.Open never returns.
func probeChild(in io.Reader, out *os.File) int {
	os.Unsetenv(probeEnv) // processes the module's init may start are not probes
	if out == nil {
		fmt.Fprintln(os.Stderr, "hotmod native probe: no result descriptor (fd 3)")
		return 3
	}
	res := runProbe(in)
	if err := json.NewEncoder(out).Encode(res); err != nil {
		fmt.Fprintln(os.Stderr, "hotmod native probe:", err)
		return 3
	}
	if res.Manifest == nil {
		return 1
	}
	return 0
}

func runProbe(in io.Reader) probeResult {
	var req probeRequest
	if err := json.NewDecoder(in).Decode(&req); err != nil {
		return probeResult{Stage: "request", Error: "reading the probe request: " + err.Error()}
	}
	for _, r := range req.Replay {
		if _, err := plugin.Open(r.Path); err != nil && r.MustOpen {
			return probeResult{Stage: "replay", Error: fmt.Sprintf("re-opening %s, which this process already has open, failed: %s", r.Path, openMessage(err))}
		}
	}
	p, err := plugin.Open(req.Candidate)
	if err != nil {
		return probeResult{Stage: "open", Error: openMessage(err)}
	}
	mod, err := lookupModule(p)
	if err != nil {
		var pe *probeError
		if errors.As(err, &pe) {
			return probeResult{Stage: pe.stage, Error: pe.msg}
		}
		return probeResult{Stage: "lookup", Error: err.Error()}
	}
	if err := mod.Validate(); err != nil {
		return probeResult{Stage: "validate", Error: sdk.AsError(err).Message}
	}
	m := mod.Manifest()
	return probeResult{Manifest: &m}
}

// openMessage strips the `plugin.Open("<path>"): ` prefix of a plugin.Open
// error: the caller names the artifact by its original path instead.
func openMessage(err error) string {
	s := err.Error()
	if strings.HasPrefix(s, `plugin.Open("`) {
		if i := strings.Index(s, `"): `); i >= 0 {
			return s[i+4:]
		}
	}
	return s
}

// probe re-executes this binary to try opening candidate after replay. It
// returns the candidate's manifest, a *probeError for a refusal, or another
// error when the probe itself could not run (or ctx was cancelled).
func probe(ctx context.Context, replay []replayEntry, candidate string) (sdk.Manifest, error) {
	pctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	exe, err := selfExecutable()
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("probe: cannot find this executable: %w", err)
	}
	req, err := json.Marshal(probeRequest{Replay: replay, Candidate: candidate})
	if err != nil {
		return sdk.Manifest{}, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("probe: %w", err)
	}
	defer r.Close()

	cmd := exec.CommandContext(pctx, exe)
	cmd.Env = append(withoutEnv(os.Environ(), probeEnv), probeEnv+"="+probeProtocol)
	cmd.Stdin = bytes.NewReader(req)
	stderr := &capBuffer{max: 64 << 10}
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{w}
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		w.Close()
		return sdk.Manifest{}, fmt.Errorf("probe: starting %s: %w", exe, err)
	}
	w.Close()
	report := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(r, 4<<20))
		report <- b
	}()
	waitErr := cmd.Wait()
	// The child is gone; a process it started could still hold the pipe open.
	r.SetReadDeadline(time.Now().Add(time.Second))
	out := <-report

	var res probeResult
	if len(out) > 0 && json.Unmarshal(out, &res) == nil {
		if res.Manifest != nil && waitErr == nil {
			return *res.Manifest, nil
		}
		if res.Error != "" {
			return sdk.Manifest{}, &probeError{stage: res.Stage, msg: res.Error}
		}
	}
	if ctx.Err() != nil {
		return sdk.Manifest{}, ctx.Err()
	}
	if pctx.Err() != nil {
		return sdk.Manifest{}, &probeError{stage: "timeout", msg: fmt.Sprintf("the trial load in a child process did not finish within %s", ProbeTimeout)}
	}
	return sdk.Manifest{}, &probeError{stage: "crash", msg: crashSummary(stderr.Bytes(), waitErr)}
}

// selfExecutable is the binary to re-execute. On Linux /proc/self/exe is the
// running image even when its file was replaced or removed since (an upgrade
// in place), which os.Executable's path would not be.
func selfExecutable() (string, error) {
	if runtime.GOOS == "linux" {
		if _, err := os.Stat("/proc/self/exe"); err == nil {
			return "/proc/self/exe", nil
		}
	}
	return os.Executable()
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// crashSummary picks the lines of a crashed child's stderr that say what
// happened ("fatal error: runtime: no plugin module data", "panic: …",
// "SIGBUS: bus error"), without the goroutine dumps.
func crashSummary(stderr []byte, waitErr error) string {
	lines := strings.Split(string(stderr), "\n")
	start := -1
	for i, ln := range lines {
		t := strings.TrimSpace(ln)
		for _, p := range []string{"fatal error:", "panic:", "SIG", "unexpected fault address", "runtime:", "plugin:"} {
			if strings.HasPrefix(t, p) {
				start = i
				break
			}
		}
		if start >= 0 {
			break
		}
	}
	var picked []string
	if start >= 0 {
		for _, ln := range lines[start:] {
			t := strings.TrimSpace(ln)
			if t == "" || strings.HasPrefix(t, "goroutine ") || strings.HasPrefix(t, "runtime stack:") {
				break
			}
			if strings.HasPrefix(t, "PC=") {
				continue
			}
			picked = append(picked, t)
			if len(picked) == 3 {
				break
			}
		}
	} else {
		for _, ln := range lines {
			if t := strings.TrimSpace(ln); t != "" {
				picked = append(picked, t)
				if len(picked) == 3 {
					break
				}
			}
		}
	}
	s := strings.Join(picked, "; ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	switch {
	case s != "":
		return s
	case waitErr == nil:
		return "the child exited without a report (did an init function in the module call os.Exit?)"
	default:
		return fmt.Sprintf("the child died without a word (%v)", waitErr)
	}
}

// refusal turns a probe or open failure into the error Load returns, naming
// the artifact by the path the caller gave. loaded lists the artifacts this
// process has opened (original path, private copy), for a package mismatch's
// explanation.
func refusal(path string, err error, loaded [][2]string) error {
	var pe *probeError
	if errors.As(err, &pe) {
		switch pe.stage {
		case "lookup", "validate":
			return sdk.Errorf(sdk.CodeIncompatible, "%s: %s", path, pe.msg)
		case "replay", "request":
			return sdk.Errorf(sdk.CodeIncompatible, "%s cannot be checked: %s — a restart of the host gives it a clean start", path, pe.msg)
		case "timeout":
			return sdk.Errorf(sdk.CodeIncompatible, "%s: %s: an init function in the module may block or be slow", path, pe.msg)
		case "host-open":
			return sdk.Errorf(sdk.CodeIncompatible, "%s passed the probe but plugin.Open failed in this host: %s%s", path, pe.msg, hint(path, pe.msg, loaded))
		}
		return sdk.Errorf(sdk.CodeIncompatible, "%s: the trial load in a child process failed: %s%s", path, pe.msg, hint(path, pe.msg, loaded))
	}
	var se *sdk.Error
	if errors.As(err, &se) {
		return sdk.Errorf(se.Code, "%s: %s", path, se.Message)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return sdk.Errorf(sdk.CodeTimeout, "%s: loading stopped: %v", path, err)
	}
	return sdk.Errorf(sdk.CodeInternal, "%s: %v", path, err)
}

// hint says what a known plugin failure means and what to do.
func hint(path, msg string, loaded [][2]string) string {
	switch {
	case mismatchedPackage(msg) != "":
		return mismatchHint(path, mismatchedPackage(msg), loaded)
	case strings.Contains(msg, "plugin already loaded"):
		// Two causes: the same plugin path (a package-path build), or a plugin
		// from another Go release opened after others: its module data never
		// registers, and the runtime takes the last plugin's for it.
		return " — either an artifact with the same plugin path is already loaded (built from a package path rather than a file list?), " +
			"or it was built by another Go toolchain: rebuild it with `hotmod build`, which uses the host's toolchain and gives every build its own plugin path"
	case strings.Contains(msg, "no plugin module data"), strings.Contains(msg, "lastmoduleinit"),
		strings.HasPrefix(msg, "SIG"), strings.HasPrefix(msg, "unexpected fault address"):
		return " — this is how a plugin built by another Go toolchain or with other flags fails: rebuild it with `hotmod build`, " +
			"or build it for the wasm or process transport"
	case strings.HasPrefix(msg, "panic:"):
		return " — an init function in the module panicked"
	}
	return ""
}

// capBuffer keeps the first max bytes written to it and drops the rest.
type capBuffer struct {
	buf bytes.Buffer
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); room > 0 {
		if len(p) > room {
			c.buf.Write(p[:room])
		} else {
			c.buf.Write(p)
		}
	}
	return len(p), nil
}

func (c *capBuffer) Bytes() []byte { return c.buf.Bytes() }

// ReadManifest reads the manifest of the plugin at path in a throwaway
// child process, as the probe does, without opening it in this process: its
// package initialisation runs in the child alone, and nothing it starts
// outlives the child. `hotmod build` names an artifact after it.
func ReadManifest(ctx context.Context, path string) (sdk.Manifest, error) {
	m, err := probe(ctx, nil, path)
	if err != nil {
		return sdk.Manifest{}, refusal(path, err, nil)
	}
	return m, nil
}
