package process

import (
	"context"
	"debug/buildinfo"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// inProcessGo is added to an example's package: with HOTMOD_TEST_CALLS
// naming a file of calls, the program makes them in-process (Module.Invoke,
// the native transport's entry point) and writes the outcomes to stdout,
// instead of running as a module. So one binary answers the same calls both
// ways.
const inProcessGo = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

func init() {
	path := os.Getenv("HOTMOD_TEST_CALLS")
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	calls, err := cbor.Unmarshal(data)
	if err != nil {
		panic(err)
	}
	var outcomes []any
	for _, c := range calls.([]any) {
		call := c.([]any)
		params, _ := call[1].(map[string]any)
		out, err := Module.Invoke(context.Background(), call[0].(string), params)
		if err != nil {
			e := sdk.AsError(err)
			outcomes = append(outcomes, map[string]any{"code": string(e.Code), "message": e.Message})
		} else {
			outcomes = append(outcomes, map[string]any{"result": out})
		}
	}
	b, err := cbor.Marshal(outcomes)
	if err != nil {
		panic(err)
	}
	os.Stdout.Write(b)
	os.Exit(0)
}
`

type exampleCall struct {
	method string
	params map[string]any
}

var exampleCalls = map[string][]exampleCall{
	"greeter": {
		{"hello", map[string]any{"name": "Ada"}},
		{"hello", map[string]any{"name": "世界"}},
		{"hello", map[string]any{}},
		{"hello", map[string]any{"name": int64(5)}},
		{"goodbye", nil},
	},
	"pricing": {
		{"quote", map[string]any{"sku": "tea", "qty": int64(3), "coupon": "TENOFF"}},
		{"quote", map[string]any{"sku": "cake", "qty": int64(1)}},
		{"quote", map[string]any{"sku": "tea", "qty": 2.0, "code": "half"}},
		{"quote", map[string]any{"sku": "beer", "qty": int64(1)}},
		{"quote", map[string]any{"sku": "tea", "qty": int64(0)}},
		{"quote", map[string]any{"qty": int64(1)}},
		{"quote", map[string]any{"sku": "tea", "qty": "1"}},
		{"quote", map[string]any{"sku": "tea", "qty": 2.5}},
		{"catalog", map[string]any{}},
		{"catalog", nil},
	},
}

var (
	examplesMu    sync.Mutex
	examplesBuilt = map[string]string{}
)

// buildExample builds examples/<name>, with inProcessGo added, as a process
// module; env is extra environment for the go command.
func buildExample(t *testing.T, name string, env ...string) string {
	t.Helper()
	key := name + " " + strings.Join(env, " ")
	examplesMu.Lock()
	defer examplesMu.Unlock()
	if p := examplesBuilt[key]; p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	dir := plugintest.Example(t, name)
	if err := os.WriteFile(filepath.Join(dir, "zz_inprocess_test_hook.go"), []byte(inProcessGo), 0o644); err != nil {
		t.Fatal(err)
	}
	path := plugintest.BuildProcess(t, dir, env...)
	examplesBuilt[key] = path
	return path
}

// inProcess makes the calls in the binary's own process.
func inProcess(t *testing.T, bin string, calls []exampleCall) []any {
	t.Helper()
	var list []any
	for _, c := range calls {
		list = append(list, []any{c.method, c.params})
	}
	data, err := cbor.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "calls.cbor")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOTMOD_TEST_CALLS="+file)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in-process: %v", bin, err)
	}
	v, err := cbor.Unmarshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return v.([]any)
}

// overProcess makes the calls through the process transport.
func overProcess(t *testing.T, inst *Instance, calls []exampleCall) []any {
	t.Helper()
	var outcomes []any
	for _, c := range calls {
		out, err := inst.Invoke(context.Background(), c.method, c.params)
		if err != nil {
			var e *sdk.Error
			if !errors.As(err, &e) {
				t.Fatalf("%s: %T %v is not an *sdk.Error", c.method, err, err)
			}
			outcomes = append(outcomes, map[string]any{"code": string(e.Code), "message": e.Message})
		} else {
			outcomes = append(outcomes, map[string]any{"result": out})
		}
	}
	return outcomes
}

// TestExamplesMatchInProcess: the examples, built as process modules,
// answer every call (results and errors alike) as they do in-process.
func TestExamplesMatchInProcess(t *testing.T) {
	for _, name := range []string{"greeter", "pricing"} {
		t.Run(name, func(t *testing.T) {
			bin := buildExample(t, name)
			cfg, _ := testConfig(t)
			inst := load(t, cfg, bin)
			if inst.Manifest().Name != name {
				t.Fatalf("manifest %+v", inst.Manifest())
			}
			want := inProcess(t, bin, exampleCalls[name])
			got := overProcess(t, inst, exampleCalls[name])
			for i := range want {
				if !reflect.DeepEqual(got[i], want[i]) {
					t.Errorf("%s %v:\n process   %#v\n in-process %#v", exampleCalls[name][i].method, exampleCalls[name][i].params, got[i], want[i])
				}
			}
			if name == "pricing" {
				if err := inst.Check(context.Background()); err != nil {
					t.Errorf("pricing's self-check: %v", err)
				}
			}
		})
	}
}

// TestCrossVersion: a module built with Go 1.22 runs in this host.
func TestCrossVersion(t *testing.T) {
	const old = "go1.22.12"
	bin := buildExample(t, "pricing", "GOTOOLCHAIN="+old)
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if bi.GoVersion != old {
		t.Fatalf("built with %s, want %s", bi.GoVersion, old)
	}
	cfg, _ := testConfig(t)
	inst := load(t, cfg, bin)
	want := inProcess(t, bin, exampleCalls["pricing"])
	got := overProcess(t, inst, exampleCalls["pricing"])
	if !reflect.DeepEqual(got, want) {
		t.Errorf("a %s module answers\n%#v\nin-process it answers\n%#v", old, got, want)
	}
	// And it says the same as the one this toolchain builds.
	cur := load(t, cfg, buildExample(t, "pricing"))
	if a, b := inst.Manifest().Fingerprint, cur.Manifest().Fingerprint; a != b {
		t.Errorf("fingerprints differ: %s (%s) and %s", a, old, b)
	}
}

// TestByHand: a module binary started by hand says what it is and exits 2.
func TestByHand(t *testing.T) {
	bin := buildExample(t, "greeter")
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "HOTMOD_PROCESS=") // as if unset
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v, want status 2", err)
	}
	if !strings.Contains(string(out), "greeter@1.0.0 is a hotmod module (methods: hello)") {
		t.Errorf("output %q", out)
	}
}
