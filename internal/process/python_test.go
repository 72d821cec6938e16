//go:build linux

package process

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

func needPython(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 is not installed")
	}
}

// pythonExample copies examples/python to a temporary directory.
func pythonExample(t *testing.T) string {
	t.Helper()
	src := filepath.Join(plugintest.Repo(t), "examples", "python")
	dir := t.TempDir()
	for _, name := range []string{"textstats.py", "textstats.process.json"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return filepath.Join(dir, "textstats.process.json")
}

// TestPython loads the Python example, which speaks the JSON text mode with
// nothing but Python's standard library, and calls it.
func TestPython(t *testing.T) {
	needPython(t)
	cfg, rec := testConfig(t)
	cfg.PoolSize = 2
	cfg.Heartbeat = 50 * time.Millisecond
	inst := load(t, cfg, filepath.Join(plugintest.Repo(t), "examples", "python", "textstats.process.json"))
	man := inst.Manifest()
	if man.Name != "textstats" || man.Version != "1.0.0" || len(man.Methods) != 3 || man.Fingerprint == "" {
		t.Fatalf("manifest = %+v", man)
	}
	if err := inst.Init(bg, map[string]any{"x": int64(1)}); err != nil {
		t.Fatal(err)
	}
	if err := inst.Check(bg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	text := "To be, or not to be: that is the question.\nWhether 'tis nobler in the mind to suffer"
	tests := []struct {
		method string
		params map[string]any
		want   map[string]any
		code   sdk.Code
		msg    string
	}{
		{"count_words", map[string]any{"text": text},
			map[string]any{"words": int64(18), "unique": int64(14), "lines": int64(2), "chars": int64(len([]rune(text)))}, "", ""},
		{"count_words", map[string]any{"text": "héllo wörld, 世界"},
			map[string]any{"words": int64(3), "unique": int64(3), "lines": int64(1), "chars": int64(15)}, "", ""},
		{"top_words", map[string]any{"text": text, "n": int64(2)},
			map[string]any{"words": []any{
				map[string]any{"word": "to", "count": int64(3)},
				map[string]any{"word": "be", "count": int64(2)}}}, "", ""}, // ties go alphabetically: "be" before "the"
		{"top_words", map[string]any{"text": "b a b", "n": 3.0}, // an integral float is taken as the integer
			map[string]any{"words": []any{
				map[string]any{"word": "b", "count": int64(2)},
				map[string]any{"word": "a", "count": int64(1)}}}, "", ""},
		{"mean_word_length", map[string]any{"text": "ab abcd"},
			map[string]any{"mean": 3.0, "words": int64(2)}, "", ""}, // 3.0 stays a float
		{"mean_word_length", map[string]any{"text": "..."}, nil, sdk.CodeModule, "the text has no words"},
		{"count_words", map[string]any{}, nil, sdk.CodeBadParams, `"text" is required (a string)`},
		{"count_words", map[string]any{"text": int64(3)}, nil, sdk.CodeBadParams, `"text": want string, got integer`},
		{"top_words", map[string]any{"text": "a", "n": int64(0)}, nil, sdk.CodeBadParams, `"n" must be between 1 and 100, got 0`},
		{"top_words", map[string]any{"text": "a", "n": 2.5}, nil, sdk.CodeBadParams, `"n": want integer, got float`},
		{"shout", nil, nil, sdk.CodeUnknownMethod, "module textstats has no method 'shout'"},
	}
	for _, tt := range tests {
		out, err := inst.Invoke(ctx, tt.method, tt.params)
		if tt.code != "" {
			if sdk.CodeOf(err) != tt.code || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("%s %v: %v, want %s %q", tt.method, tt.params, err, tt.code, tt.msg)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(out, tt.want) {
			t.Errorf("%s %v:\n got %#v, %v\nwant %#v", tt.method, tt.params, out, err, tt.want)
		}
	}

	// Bytes reach a JSON module as base64 text (JSON has no bytes).
	if _, err := inst.Invoke(ctx, "count_words", map[string]any{"text": []byte("hi")}); err != nil {
		t.Errorf("bytes for a string: %v", err)
	}
	// NaN cannot be sent in JSON: bad_params, and the child stays.
	pids := inst.PIDs()
	_, err := inst.Invoke(ctx, "count_words", map[string]any{"text": "a", "x": nanValue()})
	if sdk.CodeOf(err) != sdk.CodeBadParams || !strings.Contains(err.Error(), "params.x: NaN cannot be sent to a module that speaks JSON") {
		t.Errorf("NaN: %v", err)
	}

	// Calls at once: the pool of two single-threaded children takes them.
	var wg sync.WaitGroup
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := inst.Invoke(ctx, "count_words", map[string]any{"text": "one two three"})
			if err != nil || out["words"] != int64(3) {
				t.Errorf("count_words: %v, %v", out, err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(200 * time.Millisecond) // heartbeats, answered between calls
	if got := inst.PIDs(); !reflect.DeepEqual(got, pids) {
		t.Errorf("children changed from %v to %v", pids, got)
	}

	// A crash (here: killed) is survived like any other child's.
	syscall.Kill(pids[0], syscall.SIGKILL)
	waitFor(t, 20*time.Second, "the Python child was not replaced", func() bool {
		p := inst.PIDs()
		return len(p) == 2 && p[0] != pids[0] && p[1] != pids[0]
	})
	if out, err := inst.Invoke(ctx, "count_words", map[string]any{"text": "x"}); err != nil || out["words"] != int64(1) {
		t.Errorf("after the restart: %v, %v", out, err)
	}
	if err := inst.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range append(pids, inst.PIDs()...) {
		if alive(p) {
			t.Errorf("pid %d alive after Close", p)
		}
	}
	if rec.find("process module started", "module=textstats") == "" {
		t.Errorf("the start is not logged")
	}
}

// TestPythonChangedScript: the sum covers the script a launch file names,
// and a restart that finds another version refuses to serve it.
func TestPythonChangedScript(t *testing.T) {
	needPython(t)
	lf := pythonExample(t)
	script := filepath.Join(filepath.Dir(lf), "textstats.py")
	cfg, _ := testConfig(t)
	cfg.MaxCrashes = 2
	failed := make(chan error, 1)
	cfg.OnFailed = func(_ *Instance, err error) { failed <- err }
	inst := load(t, cfg, lf)
	sum := inst.Sum()

	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(src), `VERSION = "1.0.0"`, `VERSION = "1.0.1"`, 1)
	if err := os.WriteFile(script, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	again := load(t, cfg, lf)
	if again.Sum() == sum || again.Manifest().Version != "1.0.1" {
		t.Errorf("after the script changed: sum %s (was %s), version %s", again.Sum(), sum, again.Manifest().Version)
	}

	syscall.Kill(inst.PIDs()[0], syscall.SIGKILL)
	select {
	case err := <-failed:
		if !strings.Contains(err.Error(), "the module changed under the running version: it is now textstats@1.0.1") {
			t.Errorf("OnFailed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the version did not fail")
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}
