package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/journal"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// boomSource is a native module whose init starts a goroutine that panics
// later: it passes the probe (the probe child is gone by then) and kills
// the process that keeps it.
const boomSource = `package main

import (
	"context"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("boom", "1.0.0").Handle("ok", func(context.Context, map[string]any) (map[string]any, error) {
	return map[string]any{"ok": true}, nil
})

func init() {
	go func() {
		time.Sleep(2 * time.Second)
		panic("boom: a goroutine of this module panicked")
	}()
}

func main() { sdk.Main(Module) }
`

// exiterSource is a native module with a method that ends the process.
const exiterSource = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("exiter", "1.0.0").
	Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return map[string]any{"ok": true}, nil }).
	Handle("exit", func(context.Context, map[string]any) (map[string]any, error) { os.Exit(3); return nil, nil })

func main() { sdk.Main(Module) }
`

// restartBudget is how soon after a worker's death other modules must
// answer again for the test to pass: a bound on "the daemon came back by
// itself", not the speed aim (≤ 1 s with the bundled examples), which the
// test logs and a loaded machine can miss.
const restartBudget = 10 * time.Second

// api makes one raw HTTP request to the daemon (the one place a test of
// this file talks HTTP, so headers can be added here).
func api(method, url, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	// The admin token the daemon published for its address, and JSON.
	if token, err := auth.ReadCredential(req.URL.Host); err == nil && token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// sourceNamed is plugintest.Source in a directory called name (the name
// hotmod build gives the artifact).
func sourceNamed(t *testing.T, name, mainGo string) string {
	t.Helper()
	dir := plugintest.Source(t, mainGo)
	named := filepath.Join(filepath.Dir(dir), name)
	if err := os.Rename(dir, named); err != nil {
		t.Fatal(err)
	}
	return named
}

// buildAll builds module sources into dir at once (hotmod build), failing
// the test if any build fails.
func buildAll(t *testing.T, dir string, srcs ...string) {
	t.Helper()
	var wg sync.WaitGroup
	res := make([]result, len(srcs))
	for i, src := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = hotmodRun(t, nil, "", "build", "-o", dir, src)
		}()
	}
	wg.Wait()
	for i, r := range res {
		if r.code != 0 {
			t.Fatalf("hotmod build %s: %s", srcs[i], r)
		}
	}
}

// logTimes returns when the daemon logged msg, oldest first.
func (d *daemon) logTimes(msg string) []time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []time.Time
	for _, line := range d.logs {
		var rec struct {
			Time time.Time
			Msg  string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			out = append(out, rec.Time)
		}
	}
	return out
}

// waitLog waits until the daemon logged msg n times, and returns when the
// nth was logged.
func (d *daemon) waitLog(t *testing.T, msg string, n int, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ts := d.logTimes(msg); len(ts) >= n {
			return ts[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for the daemon to log %q %d times", within, msg, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// workerPID asks /readyz which worker answers.
func (d *daemon) workerPID(t *testing.T) (int, bool) {
	t.Helper()
	status, body, err := api("GET", "http://"+d.addr+"/readyz", "")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	var r struct{ Worker int }
	_ = json.Unmarshal([]byte(body), &r)
	return r.Worker, status == http.StatusOK
}

func quarantined(file string) func(hotmod.ModuleInfo) bool {
	return func(m hotmod.ModuleInfo) bool {
		return filepath.Base(m.Artifact) == file && m.State == hotmod.StateFailed && strings.Contains(m.Reason, "quarantined")
	}
}

// TestWorkerDeath runs native modules that kill the daemon's worker: one
// whose init starts a goroutine that panics 2s later, one whose method
// calls os.Exit. The daemon answers other modules again within
// restartBudget of each death, quarantines the module that killed it,
// serves everything else after a restart with the files still there, and
// loads a module again once its quarantine is lifted.
func TestWorkerDeath(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and three native modules)")
	}
	plugins := t.TempDir()
	buildAll(t, plugins, plugintest.Example(t, "greeter"), sourceNamed(t, "boom", boomSource), sourceNamed(t, "exiter", exiterSource))
	d := startDaemon(t, plugins)
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	greet := func() bool {
		status, body, err := api("POST", "http://"+d.addr+"/v1/invoke/greeter/hello", `{"name":"Ada"}`)
		return err == nil && status == 200 && strings.Contains(body, "hello, Ada")
	}
	// firstAnswerAfter polls greeter until it answers and returns when.
	firstAnswerAfter := func(died time.Time) time.Duration {
		deadline := time.Now().Add(30 * time.Second)
		for !greet() {
			if time.Now().After(deadline) {
				t.Fatalf("greeter did not answer within 30s of the worker's death")
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(died)
	}

	died := d.waitLog(t, "worker died", 1, 30*time.Second)
	gap := firstAnswerAfter(died)
	t.Logf("worker restart gap (death → greeter answers again): %v", gap.Round(time.Millisecond))
	if gap > restartBudget {
		t.Errorf("greeter answered %v after the worker died, want ≤ %v", gap, restartBudget)
	}
	mods := d.waitModules(t, "boom.so quarantined", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, quarantined("boom.so")) != nil && find(mods, active("exiter", "1.0.0")) != nil
	})
	if m := find(mods, quarantined("boom.so")); !strings.Contains(m.Reason, "after it was loaded") || !strings.Contains(m.Reason, "panic: boom") {
		t.Errorf("boom.so's reason does not say when and why the worker died: %s", m.Reason)
	}
	r := mustRun(t, addr, "quarantine", "ls")
	if !strings.Contains(r.stdout, "boom@1.0.0") || !strings.Contains(r.stdout, filepath.Join(plugins, "boom.so")) {
		t.Errorf("hotmod quarantine ls:\n%s", r.stdout)
	}
	if r := mustRun(t, addr, "ls"); !strings.Contains(r.stdout, "quarantined") {
		t.Errorf("hotmod ls does not say boom.so is quarantined:\n%s", r.stdout)
	}

	// os.Exit in a method: the call fails, the worker dies, and the module
	// whose call was running is quarantined — after at most two deaths.
	for deaths := 1; ; deaths++ {
		if _, _, err := api("POST", "http://"+d.addr+"/v1/invoke/exiter/exit", `{}`); err == nil {
			t.Fatalf("the call of a method that exits the worker answered")
		}
		died = d.waitLog(t, "worker died", 1+deaths, 30*time.Second)
		gap := firstAnswerAfter(died)
		t.Logf("worker restart gap after os.Exit: %v", gap.Round(time.Millisecond))
		if find(d.waitModules(t, "exiter loaded or quarantined", func(mods []hotmod.ModuleInfo) bool {
			return find(mods, active("exiter", "1.0.0")) != nil || find(mods, quarantined("exiter.so")) != nil
		}), quarantined("exiter.so")) != nil {
			break
		}
		if deaths == 2 {
			t.Fatalf("exiter.so is not quarantined after two deaths:\n%s", mustRun(t, addr, "ls").stdout)
		}
	}
	d.stop(t, syscall.SIGTERM)

	// A restart with both files still there serves the rest and does not die.
	d = startDaemon(t, plugins)
	addr = []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "greeter active, boom and exiter quarantined", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("greeter", "1.0.0")) != nil && find(mods, quarantined("boom.so")) != nil && find(mods, quarantined("exiter.so")) != nil
	})
	time.Sleep(2500 * time.Millisecond) // longer than boom's fuse
	if !greet() || len(d.logTimes("worker died")) > 0 {
		t.Fatalf("the restarted daemon did not keep serving:\n%s", d.log())
	}

	// Lifting the quarantine loads the module again.
	if r := mustRun(t, addr, "quarantine", "lift", filepath.Join(plugins, "exiter.so")); !strings.HasPrefix(r.stdout, "lifted ") {
		t.Errorf("hotmod quarantine lift: %s", r)
	}
	d.waitModules(t, "exiter active after the lift", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("exiter", "1.0.0")) != nil
	})
	if r := mustRun(t, addr, "quarantine", "ls"); strings.Contains(r.stdout, "exiter") || !strings.Contains(r.stdout, "boom") {
		t.Errorf("hotmod quarantine ls after lifting exiter:\n%s", r.stdout)
	}
	if r := hotmodRun(t, addr, "", "quarantine", "lift", "nothing-like-this"); r.code != 1 || !strings.Contains(r.stderr, "no quarantined artifact") {
		t.Errorf("lifting what is not quarantined: %s", r)
	}
	d.stop(t, syscall.SIGTERM)
}

// TestReadiness: the daemon answers as soon as it listens; /readyz says 503
// until the directory's first load is done, and calls to modules not
// loaded yet get unknown_module rather than a refused connection.
func TestReadiness(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	plugins := t.TempDir()
	// A process module whose program takes a second to fail: the first
	// load takes that long.
	if err := os.WriteFile(filepath.Join(plugins, "slow.process.json"), []byte(`{"command": "sh", "args": ["-c", "sleep 1"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	d := launchDaemon(t, plugins, "--allow-command", "sh")
	base := "http://" + d.addr
	if status, body, err := api("GET", base+"/healthz", ""); err != nil || status != 200 {
		t.Errorf("GET /healthz at once: %d %s %v", status, body, err)
	}
	status, body, err := api("GET", base+"/readyz", "")
	if err != nil || status != 503 || !strings.Contains(body, `"reason":"loading the modules of`) {
		t.Errorf("GET /readyz during the first load: %d %s %v, want 503 with the reason", status, body, err)
	}
	if status, body, err := api("POST", base+"/v1/invoke/greeter/hello", `{}`); err != nil || status != 404 || !strings.Contains(body, "unknown_module") {
		t.Errorf("a call during the first load: %d %s %v, want unknown_module", status, body, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, err = api("GET", base+"/readyz", "")
		if err == nil && status == 200 && strings.Contains(body, `"status":"ready"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not answer 200 within 30s: %d %s %v", status, body, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d.stop(t, syscall.SIGTERM)
}

// TestRecycleUnderLoad loads several native versions, then replaces the
// worker while callers keep calling: no call fails, and the new worker
// holds only the version that serves. Then the --recycle-native-versions
// policy does the same unasked.
func TestRecycleUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and four native modules)")
	}
	plugins, builds := t.TempDir(), t.TempDir()
	var srcs []string
	for i := 0; i < 4; i++ {
		srcs = append(srcs, plugintest.Example(t, "greeter", `const version = "1.0.0"`, fmt.Sprintf(`const version = "1.0.%d"`, i)))
	}
	var outs []string
	for i := range srcs {
		outs = append(outs, filepath.Join(builds, strconv.Itoa(i)))
	}
	var wg sync.WaitGroup
	res := make([]result, len(srcs))
	for i := range srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = hotmodRun(t, nil, "", "build", "-o", outs[i], srcs[i])
		}()
	}
	wg.Wait()
	for _, r := range res {
		if r.code != 0 {
			t.Fatalf("hotmod build: %s", r)
		}
	}
	d := startDaemon(t, plugins)
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	swapTo := func(d *daemon, i int) { // each swap leaves a native version mapped for good
		t.Helper()
		data, err := os.ReadFile(filepath.Join(outs[i], "greeter.so"))
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(plugins, ".greeter.so.tmp")
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(plugins, "greeter.so")); err != nil {
			t.Fatal(err)
		}
		d.waitModules(t, "greeter swapped", func(mods []hotmod.ModuleInfo) bool {
			return len(mods) == 1 && find(mods, active("greeter", fmt.Sprintf("1.0.%d", i))) != nil
		})
	}
	for i := range outs {
		swapTo(d, i)
	}
	oldPID, _ := d.workerPID(t)
	rssBefore := residentBytes(oldPID)

	var calls, failures atomic.Int64
	var maxLatency atomic.Int64
	stop := make(chan struct{})
	var callers sync.WaitGroup
	var firstErr atomic.Value
	for i := 0; i < 4; i++ {
		callers.Add(1)
		go func() {
			defer callers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				status, body, err := api("POST", "http://"+d.addr+"/v1/invoke/greeter/hello", `{"name":"Ada"}`)
				if took := int64(time.Since(start)); took > maxLatency.Load() {
					maxLatency.Store(took)
				}
				calls.Add(1)
				if err != nil || status != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s %v", status, body, err))
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	maxLatency.Store(0)
	asked := time.Now()
	mustRun(t, addr, "recycle")
	var newPID int
	for deadline := time.Now().Add(60 * time.Second); ; {
		if pid, ready := d.workerPID(t); ready && pid != oldPID {
			newPID = pid
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new worker within 60s of hotmod recycle")
		}
		time.Sleep(20 * time.Millisecond)
	}
	swapped := time.Since(asked)
	for deadline := time.Now().Add(30 * time.Second); ; {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", oldPID)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the old worker %d did not exit within 30s of the new one being ready", oldPID)
		}
		time.Sleep(20 * time.Millisecond)
	}
	retired := time.Since(asked)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	callers.Wait()
	rssAfter := residentBytes(newPID)
	t.Logf("recycle: %d calls by 4 callers, %d failed; new worker ready %v after the request, old one gone after %v; longest call during the handover %v",
		calls.Load(), failures.Load(), swapped.Round(time.Millisecond), retired.Round(time.Millisecond), time.Duration(maxLatency.Load()).Round(time.Millisecond))
	t.Logf("worker RSS with 4 native versions loaded: %d KiB; after the recycle (1 loaded): %d KiB; given back %d KiB",
		rssBefore>>10, rssAfter>>10, (rssBefore-rssAfter)>>10)
	if failures.Load() > 0 {
		t.Errorf("%d calls failed during the recycle; the first: %v", failures.Load(), firstErr.Load())
	}
	if rssAfter >= rssBefore {
		t.Errorf("the new worker's RSS (%d) is not below the old one's (%d)", rssAfter, rssBefore)
	}
	mods := d.modules(t)
	if len(mods) != 1 || find(mods, active("greeter", "1.0.3")) == nil {
		t.Errorf("after the recycle the daemon holds %+v", mods)
	}
	d.stop(t, syscall.SIGTERM)

	// The policy: a worker that loaded 2 native versions after its first
	// load asks for its own replacement.
	d = startDaemon(t, plugins, "--recycle-native-versions", "2")
	first, _ := d.workerPID(t)
	swapTo(d, 1)
	swapTo(d, 2)
	d.waitLog(t, "worker recycled: the old one stops accepting and drains", 1, 60*time.Second)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		// A connection to the old worker may answer once more before it closes.
		if pid, ready := d.workerPID(t); ready && pid != first {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("--recycle-native-versions 2: worker %d still answers 30s after the recycle", first)
		}
	}
	d.stop(t, syscall.SIGTERM)
}

// TestReadyzWhenTheDirectoryGoes: a module directory that disappears makes
// /readyz answer 503 with the reason, and 200 again once it is back.
func TestReadyzWhenTheDirectoryGoes(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping a test that runs the hotmod binary")
	}
	plugins := filepath.Join(t.TempDir(), "plugins")
	d := startDaemon(t, plugins, "--state-dir", filepath.Join(t.TempDir(), "state"))
	readyz := func(want int, body string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, got, err := api("GET", "http://"+d.addr+"/readyz", "")
			if err == nil && status == want && strings.Contains(got, body) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("GET /readyz: %d %s %v, want %d with %q", status, got, err, want, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	readyz(200, `"status":"ready"`)
	if err := os.RemoveAll(plugins); err != nil {
		t.Fatal(err)
	}
	readyz(503, "is gone since")
	if err := os.Mkdir(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	readyz(200, `"status":"ready"`)
	d.stop(t, syscall.SIGTERM)
}

// TestRestartSkipsProbeOfProvenArtifacts: native artifacts a worker ran for
// the crash journal's suspect window are proven; the next worker of the
// same binary opens them without a probe child, so a restart is quicker.
func TestRestartSkipsProbeOfProvenArtifacts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and two native modules)")
	}
	plugins := t.TempDir()
	buildAll(t, plugins, plugintest.Example(t, "greeter"), plugintest.Example(t, "pricing"))
	d := startDaemon(t, plugins)
	d.waitReady(t)
	if n := strings.Count(d.log(), `"proven":true`); n != 0 {
		t.Fatalf("a first start trusted %d artifacts without a probe", n)
	}
	quarantine := filepath.Join(plugins, ".hotmod", "quarantine.json")
	deadline := time.Now().Add(journal.SuspectWindow + 20*time.Second)
	for {
		var l struct {
			Proven map[string]struct{ Module string }
		}
		data, _ := os.ReadFile(quarantine)
		if json.Unmarshal(data, &l) == nil && len(l.Proven) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the artifacts were not proven %v after they were loaded: %s", journal.SuspectWindow, data)
		}
		time.Sleep(200 * time.Millisecond)
	}
	pid, _ := d.workerPID(t)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	died := d.waitLog(t, "worker died", 1, 30*time.Second)
	for {
		status, body, err := api("POST", "http://"+d.addr+"/v1/invoke/greeter/hello", `{"name":"Ada"}`)
		if err == nil && status == 200 && strings.Contains(body, "hello, Ada") {
			break
		}
		if time.Since(died) > 30*time.Second {
			t.Fatalf("greeter did not answer within 30s of the worker's death")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("restart gap with proven artifacts (death → greeter answers): %v", time.Since(died).Round(time.Millisecond))
	if !d.logged(`"proven":true`, 10*time.Second) {
		t.Fatalf("the restarted worker probed its proven artifacts again:\n%s", d.log())
	}
	d.waitModules(t, "both active again", func(mods []hotmod.ModuleInfo) bool {
		return find(mods, active("greeter", "1.0.0")) != nil && find(mods, func(m hotmod.ModuleInfo) bool { return m.Name == "pricing" && m.State == hotmod.StateActive }) != nil
	})
	d.stop(t, syscall.SIGTERM)
}
