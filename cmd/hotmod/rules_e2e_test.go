package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/internal/plugintest"
)

// rulesCalls are calls of examples/rules, a module that wraps a third-party
// library (the expr language) and has packages of its own, with the answers
// every transport must give over HTTP: the status and the exact body.
var rulesCalls = []struct {
	method, params string
	status         int
	body           string
}{
	{"eval", `{"expr":"price * qty > 100","env":{"price":30,"qty":4}}`, 200, `{"type":"bool","value":true}`},
	{"eval", `{"expr":"price * qty","env":{"price":30,"qty":4}}`, 200, `{"type":"integer","value":120}`},
	{"eval", `{"expr":"map(items, #.price * #.qty)","env":{"items":[{"price":2.5,"qty":2},{"price":1,"qty":3}]}}`, 200,
		`{"type":"array","value":[5.0,3]}`},
	{"eval", `{"expr":"upper(user.tier) + \"!\"","env":{"user":{"tier":"gold"}}}`, 200, `{"type":"string","value":"GOLD!"}`},
	{"eval", `{"expr":"date(\"2024-03-01\") + duration(\"36h\")"}`, 200, `{"type":"string","value":"2024-03-02T12:00:00Z"}`},
	{"eval", `{"expr":"price *"}`, 400,
		`{"error":{"code":"bad_params","message":"the expression does not compile: unexpected token EOF (line 1, column 7)"}}`},
	{"eval", `{"expr":"1 / 0"}`, 400,
		`{"error":{"code":"bad_params","message":"result is +Inf, which JSON cannot carry (a division by zero?)"}}`},
	{"eval", `{"env":{}}`, 400, `{"error":{"code":"bad_params","message":"\"expr\" is required (a string)"}}`},
	{"check", `{"expr":"price * qty","env":{"price":30,"qty":4},"want":"integer"}`, 200,
		`{"column":0,"error":"","line":0,"ok":true,"output":"integer"}`},
	{"check", `{"expr":"price *\n  discount","env":{"price":30}}`, 200,
		`{"column":3,"error":"unknown name discount","line":2,"ok":false,"output":""}`},
	{"match", `{"rules":{"big":"total > 100","vip":"user.tier == \"gold\"","small":"total < 10"},"env":{"total":120,"user":{"tier":"gold"}}}`, 200,
		`{"matched":["big","vip"],"ran":3}`},
	{"match", `{"rules":{"n":"total"},"env":{"total":120}}`, 400,
		`{"error":{"code":"bad_params","message":"rule \"n\" returned 120, not a bool: a rule is a condition"}}`},
}

// TestRulesEveryTransport builds examples/rules with the real `hotmod build`
// for each transport, serves each artifact with the real `hotmod serve`, and
// checks that every transport gives the same answers, over HTTP and through
// `hotmod invoke`.
func TestRulesEveryTransport(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds the rules example three times and runs three daemons)")
	}
	src := filepath.Join(plugintest.Repo(t), "examples", "rules")
	for _, transport := range []string{"native", "process", "wasm"} {
		t.Run(transport, func(t *testing.T) {
			plugins := t.TempDir()
			r := mustRun(t, nil, "build", "--transport", transport, "-o", plugins, src)
			if want := filepath.Join(plugins, "rules"+artifactExt[transport]); strings.TrimSpace(r.stdout) != want {
				t.Fatalf("hotmod build printed %q, want %s", r.stdout, want)
			}
			d := startDaemon(t, plugins)
			d.waitModules(t, "rules 1.0.0", func(m []hotmod.ModuleInfo) bool { return find(m, active("rules", "1.0.0")) != nil })
			for _, c := range rulesCalls {
				status, body := d.invokeRaw(t, "rules", c.method, c.params)
				if status != c.status || body != c.body {
					t.Errorf("%s %s:\n got %d %s\nwant %d %s", c.method, c.params, status, body, c.status, c.body)
				}
			}
			r = mustRun(t, []string{"HOTMOD_ADDR=" + d.addr}, "invoke", "rules", "match", rulesCalls[10].params)
			if r.stdout != "{\n  \"matched\": [\n    \"big\",\n    \"vip\"\n  ],\n  \"ran\": 3\n}\n" {
				t.Errorf("hotmod invoke rules match: %s", r)
			}
		})
	}
}

// invokeRaw POSTs params to /v1/invoke/MODULE/METHOD and returns the status
// and the body without its trailing newline.
func (d *daemon) invokeRaw(t *testing.T, module, method, params string) (int, string) {
	t.Helper()
	resp, err := d.request(t, "POST", "/v1/invoke/"+module+"/"+method, params)
	if err != nil {
		t.Fatalf("POST %s.%s: %v", module, method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(body))
}

// rulesSwapCallers is how many callers call the plain name back to back
// while TestRulesNativeSwap swaps the version under them.
const rulesSwapCallers = 8

// TestRulesNativeSwap swaps a real module natively, under load, between two
// versions that differ where a real module's versions differ: built from
// two different directories, 1.1.0 with a field added to the result struct
// of the module's own package format, and with its dependency, the expr
// language, moved from v1.17.8 to v1.17.7. 8 callers call the plain name
// back to back through the real `hotmod serve`: no call may fail, and once
// 1.1.0 is active every answer is 1.1.0's.
func TestRulesNativeSwap(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping (builds two native versions of the rules example)")
	}
	v1 := plugintest.Example(t, "rules")
	v2 := plugintest.Example(t, "rules", `const version = "1.0.0"`, `const version = "1.1.0"`)
	plugintest.Edit(t, v2, filepath.Join("format", "format.go"),
		"\tType  string `hotmod:\"type,id=2\"`\n",
		"\tType  string `hotmod:\"type,id=2\"`\n\tEngine string `hotmod:\"engine,id=3\"`\n",
		"Result{Value: v, Type: sdk.TypeName(v)}",
		"Result{Value: v, Type: sdk.TypeName(v), Engine: \"expr v1.17.7\"}")
	plugintest.Require(t, v2, "github.com/expr-lang/expr", "v1.17.7")

	plugins := t.TempDir()
	artifact := strings.TrimSpace(mustRun(t, nil, "build", "-o", plugins, v1).stdout)
	if v := exprVersion(t, artifact); v != "v1.17.8" {
		t.Fatalf("rules 1.0.0 was built with expr %s, want v1.17.8", v)
	}
	d := startDaemon(t, plugins)
	d.waitModules(t, "rules 1.0.0", func(m []hotmod.ModuleInfo) bool { return find(m, active("rules", "1.0.0")) != nil })

	const (
		params = `{"expr":"price * qty","env":{"price":30,"qty":4}}`
		old    = `{"type":"integer","value":120}`
		newer  = `{"engine":"expr v1.17.7","type":"integer","value":120}`
	)
	if status, body := d.invokeRaw(t, "rules", "eval", params); status != 200 || body != old {
		t.Fatalf("rules 1.0.0 answered %d %s, want %s", status, body, old)
	}
	load := newRulesLoad(t, d, params)
	// Let the callers run on 1.0.0 first.
	for load.count() < 200 {
		time.Sleep(10 * time.Millisecond)
	}
	built := time.Now()
	mustRun(t, nil, "build", "-o", plugins, v2)
	if v := exprVersion(t, artifact); v != "v1.17.7" {
		load.stop()
		t.Fatalf("rules 1.1.0 was built with expr %s, want v1.17.7", v)
	}
	var swapped time.Time
	mods := d.waitModules(t, "rules 1.1.0 to replace 1.0.0, or the build to be refused", func(m []hotmod.ModuleInfo) bool {
		if find(m, active("rules", "1.1.0")) != nil && find(m, active("rules", "1.0.0")) == nil {
			swapped = time.Now()
			return true
		}
		return find(m, func(i hotmod.ModuleInfo) bool { return i.State == hotmod.StateFailed }) != nil
	})
	if swapped.IsZero() {
		load.stop()
		failed := find(mods, func(i hotmod.ModuleInfo) bool { return i.State == hotmod.StateFailed })
		t.Fatalf("the daemon refused rules 1.1.0 (built from another directory, with a changed package format and expr v1.17.7): %s", failed.Reason)
	}
	// Calls that start from now on must reach 1.1.0.
	after := load.count()
	for load.count() < after+400 {
		time.Sleep(10 * time.Millisecond)
	}
	calls := load.stop()

	failures, answers := 0, map[string]int{}
	lastOld, firstNew := -1, -1
	for i, c := range calls {
		switch {
		case c.status != 200:
			failures++
			if failures <= 5 {
				t.Errorf("call %d failed: %d %s", i, c.status, c.body)
			}
		case c.body == old:
			lastOld = i
		case c.body == newer:
			if firstNew < 0 {
				firstNew = i
			}
		default:
			t.Errorf("call %d answered %s, neither 1.0.0's %s nor 1.1.0's %s", i, c.body, old, newer)
		}
		answers[c.body]++
	}
	if failures > 0 {
		t.Errorf("%d of %d calls failed during the swap", failures, len(calls))
	}
	if lastOld >= after {
		t.Errorf("call %d, started after 1.1.0 was active, reached 1.0.0", lastOld)
	}
	if firstNew < 0 {
		t.Fatalf("no call reached 1.1.0; answers: %v", answers)
	}
	t.Logf("%d calls by %d callers, %d failed; 1.1.0 active %v after its build began; answers %v",
		len(calls), rulesSwapCallers, failures, swapped.Sub(built).Round(time.Millisecond), answers)
}

// exprVersion returns the version of the expr module that the artifact
// was built with, as `hotmod inspect --json` reports it (relocated or not).
func exprVersion(t *testing.T, artifact string) string {
	t.Helper()
	r := mustRun(t, nil, "inspect", "--json", artifact)
	var in inspection
	if err := json.Unmarshal([]byte(r.stdout), &in); err != nil || in.Build == nil {
		t.Fatalf("hotmod inspect --json %s: %v\n%s", artifact, err, r.stdout)
	}
	for _, dep := range in.Build.Deps {
		if dep.Path == "github.com/expr-lang/expr" || strings.HasSuffix(dep.Path, "/github.com/expr-lang/expr") {
			return dep.Version
		}
	}
	t.Fatalf("%s: no expr among the modules it was built with: %+v", artifact, in.Build.Deps)
	return ""
}

// rulesCall is one call's outcome, in the order calls started.
type rulesCall struct {
	status int
	body   string
}

// rulesLoad is rulesSwapCallers goroutines calling rules.eval back to back
// over HTTP until stop.
type rulesLoad struct {
	mu    sync.Mutex
	calls []rulesCall
	done  chan struct{}
	wg    sync.WaitGroup
}

func newRulesLoad(t *testing.T, d *daemon, params string) *rulesLoad {
	t.Helper()
	token, err := auth.ReadCredential(d.addr)
	if err != nil || token == "" {
		t.Fatalf("the daemon at %s published no admin token (%v)", d.addr, err)
	}
	url := "http://" + d.addr + "/v1/invoke/rules/eval"
	l := &rulesLoad{done: make(chan struct{})}
	client := &http.Client{Timeout: 30 * time.Second}
	for range rulesSwapCallers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.done:
					return
				default:
				}
				// The slot is taken before the call starts, so a call's
				// index says when it began relative to count().
				l.mu.Lock()
				i := len(l.calls)
				l.calls = append(l.calls, rulesCall{})
				l.mu.Unlock()
				c := rulesCall{}
				req, _ := http.NewRequest("POST", url, strings.NewReader(params))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				if resp, err := client.Do(req); err != nil {
					c.body = err.Error()
				} else {
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					c.status, c.body = resp.StatusCode, strings.TrimSpace(string(body))
				}
				l.mu.Lock()
				l.calls[i] = c
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

// count returns how many calls have started.
func (l *rulesLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.calls)
}

// stop stops the callers, waits for their calls to end and returns every
// call's outcome (stop may be called more than once).
func (l *rulesLoad) stop() []rulesCall {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls
}
