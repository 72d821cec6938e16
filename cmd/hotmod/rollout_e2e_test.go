package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// apiCall makes one raw request to the daemon's API; every raw request of
// the rollout tests goes through it.
func apiCall(t *testing.T, method, url string, header map[string]string, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	// The admin token the daemon published for its address, and JSON.
	if token, err := auth.ReadCredential(req.URL.Host); err == nil && token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

// greet calls greeter with an optional key and returns the version that
// answered ("" and the body when the call failed).
func greet(t *testing.T, d *daemon, key string) (string, string) {
	t.Helper()
	h := map[string]string{}
	if key != "" {
		h["Hotmod-Key"] = key
	}
	status, body := apiCall(t, "POST", "http://"+d.addr+"/v1/invoke/greeter/hello", h, `{"name":"Ada"}`)
	if status != 200 {
		return "", body
	}
	var out struct{ Message string }
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatalf("greeter answered %s", body)
	}
	_, version, _ := strings.Cut(out.Message, " from ")
	return version, ""
}

// canaryShare is the share of n plain calls (in percent) that version
// answered; every call must succeed.
func canaryShare(t *testing.T, d *daemon, n int, version string) float64 {
	t.Helper()
	hits := 0
	for i := 0; i < n; i++ {
		v, failure := greet(t, d, "")
		if failure != "" {
			t.Fatalf("call %d failed: %s", i, failure)
		}
		if v == version {
			hits++
		}
	}
	return 100 * float64(hits) / float64(n)
}

// loadOn runs 8 callers against greeter until the returned function is
// called; that returns the failures.
func loadOn(t *testing.T, d *daemon) func() (int, []string) {
	var mu sync.Mutex
	var failures []string
	calls := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, failure := greet(t, d, "")
				mu.Lock()
				calls++
				if failure != "" {
					failures = append(failures, failure)
				}
				mu.Unlock()
			}
		}()
	}
	return func() (int, []string) {
		close(stop)
		wg.Wait()
		return calls, failures
	}
}

// TestRolloutEndToEnd drives a canary rollout through the real daemon with
// process modules: the canary's share at each step, keyed calls, ls and
// rollout status, a restart mid-canary, rollback under load, a faulty
// canary rolled back on its own, pin and unpin, a rolled-back version
// that stays rolled back after another restart, and a healthy canary
// promoted through every step with the version it replaced unloaded.
func TestRolloutEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds hotmod and three process modules)")
	}
	work := t.TempDir()
	build := func(version string, edits ...string) string {
		src := plugintest.Example(t, "greeter", append([]string{
			`const version = "1.0.0"`, `const version = "` + version + `"`,
			`"hello, " + name}`, `"hello, " + name + " from " + version}`,
		}, edits...)...)
		out := filepath.Join(work, "build-"+version)
		mustRun(t, nil, "build", "--transport", "process", "-o", out, src)
		return filepath.Join(out, "greeter.process")
	}
	v1, v2 := build("1.0.0"), build("2.0.0")
	v3 := build("3.0.0", `func hello(`, "var calls int\n\nfunc hello(",
		`	return map[string]any{"message"`, "	if calls++; calls%3 == 0 {\n\t\treturn nil, sdk.Errorf(sdk.CodeModule, \"greeter %s is broken\", version)\n\t}\n\treturn map[string]any{\"message\"")
	plugins := filepath.Join(work, "plugins")
	if err := os.MkdirAll(plugins, 0o755); err != nil {
		t.Fatal(err)
	}
	publish := func(artifact, name string) {
		data, err := os.ReadFile(artifact)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(work, name+".tmp")
		if err := os.WriteFile(tmp, data, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(plugins, name)); err != nil {
			t.Fatal(err)
		}
	}
	flags := []string{"--rollout", "canary", "--canary-steps", "10,50", "--canary-interval", "1h",
		"--state-dir", filepath.Join(work, "state")}

	publish(v1, "greeter-1.process")
	d := startDaemon(t, plugins, flags...)
	addr := []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "greeter 1.0.0", func(m []hotmod.ModuleInfo) bool { return find(m, active("greeter", "1.0.0")) != nil })
	publish(v2, "greeter-2.process")
	d.waitModules(t, "greeter 2.0.0 as a canary", func(m []hotmod.ModuleInfo) bool { return find(m, active("greeter", "2.0.0")) != nil })

	// 2000 calls at 10 %: a standard deviation of 0.67 points; ±3 is 4.5 of them.
	if got := canaryShare(t, d, 2000, "2.0.0"); got < 7 || got > 13 {
		t.Errorf("the canary's share at 10 %%: %.1f %%", got)
	} else {
		t.Logf("the canary's share at 10 %%: %.2f %% of 2000 calls", got)
	}
	for k := 0; k < 40; k++ {
		key := fmt.Sprintf("user-%d", k)
		first, _ := greet(t, d, key)
		for i := 0; i < 5; i++ {
			if v, failure := greet(t, d, key); v != first {
				t.Fatalf("key %s reached %s, then %s (%s)", key, first, v, failure)
			}
		}
	}
	r := mustRun(t, addr, "rollout", "status")
	for _, want := range []string{"greeter  canary 10,50,100% every 1h0m0s", "stable   1.0.0  90 %", "canary   2.0.0  10 %", "(step 1 of 2)", "next     50 % at"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("hotmod rollout status: no %q in\n%s", want, r.stdout)
		}
	}
	r = mustRun(t, addr, "ls")
	if !regexp.MustCompile(`(?m)^greeter +2\.0\.0 +process +Active +10 % +\d+ +- +greeter-2\.process$`).MatchString(r.stdout) ||
		!regexp.MustCompile(`(?m)^greeter +1\.0\.0 +process +Active +90 % `).MatchString(r.stdout) {
		t.Errorf("hotmod ls does not show the routes:\n%s", r.stdout)
	}
	if r = mustRun(t, addr, "promote", "greeter"); !strings.Contains(r.stdout, "canary   2.0.0  50 %") {
		t.Errorf("hotmod promote:\n%s", r.stdout)
	}
	// 2000 calls at 50 %: a standard deviation of 1.1 points.
	if got := canaryShare(t, d, 2000, "2.0.0"); got < 45 || got > 55 {
		t.Errorf("the canary's share at 50 %%: %.1f %%", got)
	} else {
		t.Logf("the canary's share at 50 %%: %.2f %% of 2000 calls", got)
	}

	// A restart mid-canary comes back at the same step.
	d.stop(t, syscall.SIGTERM)
	d = startDaemon(t, plugins, flags...)
	addr = []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "both versions back", func(m []hotmod.ModuleInfo) bool {
		return find(m, active("greeter", "1.0.0")) != nil && find(m, active("greeter", "2.0.0")) != nil
	})
	if r = mustRun(t, addr, "rollout", "status", "greeter"); !strings.Contains(r.stdout, "canary   2.0.0  50 %") || !strings.Contains(r.stdout, "(step 2 of 2)") {
		t.Errorf("after a restart mid-canary:\n%s", r.stdout)
	}

	// Rollback under load: no call fails.
	done := loadOn(t, d)
	if r = mustRun(t, addr, "rollback", "greeter"); !strings.Contains(r.stdout, "stable   1.0.0  100 %") || strings.Contains(r.stdout, "canary   ") {
		t.Errorf("hotmod rollback:\n%s", r.stdout)
	}
	d.waitModules(t, "2.0.0 rolled back", func(m []hotmod.ModuleInfo) bool {
		f := find(m, func(i hotmod.ModuleInfo) bool { return i.Version == "2.0.0" })
		return f != nil && f.State == hotmod.StateFailed && strings.Contains(f.Reason, "rolled back by an operator at 50 %")
	})
	if calls, failures := done(); len(failures) > 0 {
		t.Errorf("%d of %d calls failed around the rollback, the first: %s", len(failures), calls, failures[0])
	}

	// A faulty canary is rolled back on its own, with the numbers; only its
	// own calls fail. Pin and unpin under load fail nothing.
	done = loadOn(t, d)
	publish(v3, "greeter-3.process")
	mods := d.waitModules(t, "3.0.0 rolled back", func(m []hotmod.ModuleInfo) bool {
		f := find(m, func(i hotmod.ModuleInfo) bool { return i.Version == "3.0.0" })
		return f != nil && f.State == hotmod.StateFailed
	})
	f := find(mods, func(i hotmod.ModuleInfo) bool { return i.Version == "3.0.0" })
	if !regexp.MustCompile(`rolled back at 10 %: \d+ % failures over \d+ calls vs 0 % on 1\.0\.0`).MatchString(f.Reason) {
		t.Errorf("the faulty canary's reason: %q", f.Reason)
	}
	mustRun(t, addr, "pin", "greeter@1.0.0")
	if r = mustRun(t, addr, "rollout", "status"); !strings.Contains(r.stdout, "stable   1.0.0  pinned") {
		t.Errorf("after pin:\n%s", r.stdout)
	}
	mustRun(t, addr, "unpin", "greeter")
	calls, failures := done()
	for _, failure := range failures {
		if !strings.Contains(failure, "greeter 3.0.0 is broken") {
			t.Errorf("a call failed that the faulty canary did not fail: %s", failure)
		}
	}
	t.Logf("faulty canary: %s; %d of %d calls failed, all on the canary", f.Reason, len(failures), calls)

	if r := hotmodRun(t, addr, "", "unload", "greeter@9.9.9"); r.code != 1 || !strings.Contains(r.stderr, "greeter") {
		t.Errorf("unloading a version that is not there: %s", r)
	}
	if status, body := apiCall(t, "DELETE", "http://"+d.addr+"/v1/modules/greeter@9.9.9", nil, ""); status != 404 || !strings.Contains(body, "unknown_module") {
		t.Errorf("DELETE of a version that is not there: %d %s", status, body)
	}

	// After another restart the rolled-back versions stay rolled back.
	d.stop(t, syscall.SIGTERM)
	d = startDaemon(t, plugins, flags...)
	mods = d.waitModules(t, "2.0.0 and 3.0.0 refused", func(m []hotmod.ModuleInfo) bool {
		n := 0
		for _, i := range m {
			if i.State == hotmod.StateFailed && strings.Contains(i.Reason, "was rolled back") {
				n++
			}
		}
		return n == 2 && find(m, active("greeter", "1.0.0")) != nil
	})
	if got := canaryShare(t, d, 100, "1.0.0"); got != 100 {
		t.Errorf("after the restart %.0f %% of calls reach 1.0.0", got)
	}
	d.stop(t, syscall.SIGTERM)

	// With short steps a healthy canary goes through every step on its own;
	// then the version it replaced, Standby, is unloaded. No call fails.
	v4 := build("4.0.0")
	d = startDaemon(t, plugins, append(flags, "--canary-interval", "300ms")...)
	addr = []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "1.0.0 back", func(m []hotmod.ModuleInfo) bool { return find(m, active("greeter", "1.0.0")) != nil })
	done = loadOn(t, d)
	publish(v4, "greeter-4.process")
	d.waitModules(t, "4.0.0 promoted, 1.0.0 Standby", func(m []hotmod.ModuleInfo) bool {
		v4, v1 := find(m, active("greeter", "4.0.0")), find(m, func(i hotmod.ModuleInfo) bool { return i.Version == "1.0.0" })
		return v4 != nil && v4.Route == "100 %" && v1 != nil && v1.State == hotmod.StateStandby
	})
	mustRun(t, addr, "unload", "greeter@1.0.0")
	if calls, failures := done(); len(failures) > 0 {
		t.Errorf("%d of %d calls failed during the promotion and unload, the first: %s", len(failures), calls, failures[0])
	}
	for _, want := range []string{`"msg":"rollout canary"`, `"msg":"rollout step"`, `"msg":"rollout promoted"`} {
		if !d.logged(want, 10*time.Second) {
			t.Errorf("no %s in the daemon's log", want)
		}
	}
	d.stop(t, syscall.SIGTERM)

	// A new build written over the stable's own file: after a restart the
	// stable comes back from the copy kept in the state directory, and the
	// canary resumes.
	v5 := build("5.0.0")
	d = startDaemon(t, plugins, flags...)
	addr = []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "4.0.0 back", func(m []hotmod.ModuleInfo) bool { return find(m, active("greeter", "4.0.0")) != nil })
	publish(v5, "greeter-4.process")
	d.waitModules(t, "5.0.0 as a canary", func(m []hotmod.ModuleInfo) bool { return find(m, active("greeter", "5.0.0")) != nil })
	d.stop(t, syscall.SIGTERM)
	d = startDaemon(t, plugins, flags...)
	addr = []string{"HOTMOD_ADDR=" + d.addr}
	d.waitModules(t, "4.0.0 and 5.0.0 back", func(m []hotmod.ModuleInfo) bool {
		return find(m, active("greeter", "4.0.0")) != nil && find(m, active("greeter", "5.0.0")) != nil
	})
	if r = mustRun(t, addr, "rollout", "status", "greeter"); !strings.Contains(r.stdout, "stable   4.0.0  90 %") || !strings.Contains(r.stdout, "canary   5.0.0  10 %") {
		t.Errorf("after a restart with the stable's file overwritten:\n%s", r.stdout)
	}
	if got := canaryShare(t, d, 500, "4.0.0"); got < 80 {
		t.Errorf("%.0f %% of calls reach the stable 4.0.0", got)
	}
	d.stop(t, syscall.SIGTERM)
}
