package native

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// These tests build real plugins (seconds each) and load them into the test
// binary. The plugins are built to match the test binary (-race included:
// a race-enabled host loads race-enabled plugins), but -coverpkg covering the
// sdk would make the sdk differ from the plugins' copy.

func newLoader(t *testing.T) (*Loader, *plugintest.Log) {
	logs := &plugintest.Log{}
	dir, err := os.MkdirTemp(loaderRoot, "loader")
	if err != nil {
		t.Fatal(err)
	}
	return NewLoader(dir, slog.New(slog.NewTextHandler(logs, nil))), logs
}

// loaderRoot holds the loaders' directories for the whole run: the
// private copies of loaded plugins must outlive the test that loaded them,
// because the tests run in parallel and every probe replays every plugin
// this process has open (a t.TempDir would be removed under another test's
// probe).
var loaderRoot string

func TestMain(m *testing.M) {
	var err error
	if loaderRoot, err = os.MkdirTemp("", "hotmod-native-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(loaderRoot)
	os.Exit(code)
}

// buildAll builds the named module directories in parallel subtests and
// returns the artifacts' paths. A dir of "" skips that artifact.
func buildAll(t *testing.T, specs map[string]buildSpec) map[string]string {
	t.Helper()
	out := make(map[string]string, len(specs))
	var mu sync.Mutex
	t.Run("build", func(t *testing.T) {
		for name, s := range specs {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				path := plugintest.Build(t, s.dir(t), s.env...)
				// The subtest's temp dir goes when the subtest ends; keep a copy.
				keep := filepath.Join(s.keepDir, name+".so")
				copyFile(t, path, keep)
				mu.Lock()
				out[name] = keep
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return out
}

type buildSpec struct {
	dir     func(t *testing.T) string
	env     []string
	keepDir string
}

func copyFile(t testing.TB, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func hello(t *testing.T, inst *Instance, want string) {
	t.Helper()
	out, err := inst.Invoke(context.Background(), "hello", map[string]any{"name": "Ada"})
	if err != nil {
		t.Fatalf("%s hello: %v", inst.Manifest().Version, err)
	}
	if got := out["message"]; got != want {
		t.Fatalf("%s hello = %v, want message %q", inst.Manifest().Version, out, want)
	}
}

func TestLoadAndInvoke(t *testing.T) {
	t.Parallel()
	keep := t.TempDir()
	example := func(edits ...string) func(t *testing.T) string {
		return func(t *testing.T) string { return plugintest.Example(t, "greeter", edits...) }
	}
	so := buildAll(t, map[string]buildSpec{
		"v1": {dir: example(), keepDir: keep},
		"v2": {dir: example(`const version = "1.0.0"`, `const version = "2.0.0"`, `"hello, "`, `"hi, "`), keepDir: keep},
		"v3": {dir: example(`const version = "1.0.0"`, `const version = "3.0.0"`, `"hello, "`, `"hey, "`), keepDir: keep},
		"v4": {dir: example(`const version = "1.0.0"`, `const version = "4.0.0"`, `"hello, "`, `"howdy, "`), keepDir: keep},
	})

	// Two versions of one module, loaded at the same time, live side by side.
	l, _ := newLoader(t)
	insts := make([]*Instance, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, name := range []string{"v1", "v2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			insts[i], errs[i] = l.Load(t.Context(), so[name])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	v1, v2 := insts[0], insts[1]
	hello(t, v1, "hello, Ada")
	hello(t, v2, "hi, Ada")
	if m := v1.Manifest(); m.Name != "greeter" || m.Version != "1.0.0" || len(m.Methods) != 1 || m.Methods[0].Name != "hello" || m.SDK != sdk.Version {
		t.Errorf("v1 manifest = %+v", m)
	}
	if v := v2.Manifest().Version; v != "2.0.0" {
		t.Errorf("v2 version = %q", v)
	}
	data, _ := os.ReadFile(so["v1"])
	if sum := sha256.Sum256(data); v1.Sum() != hex.EncodeToString(sum[:]) {
		t.Errorf("Sum = %s, want the sha256 of the file", v1.Sum())
	}
	private := filepath.Join(l.dir, v1.Sum()+".so")
	if fi, err := os.Stat(private); err != nil || fi.Mode().Perm() != 0o500 {
		t.Errorf("private copy %s: %v, %v", private, fi, err)
	}

	// The same bytes again: the module already open, no second plugin.Open.
	again, err := l.Load(t.Context(), so["v1"])
	if err != nil {
		t.Fatal(err)
	}
	if again.mod != v1.mod {
		t.Error("loading the same bytes again gave another module")
	}

	// The original file can change: the process runs its private copy.
	if err := os.WriteFile(so["v1"], []byte("overwritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	hello(t, v1, "hello, Ada")

	// A second loader, after the first one's directory is gone: its probe
	// must still replay v1 and v2, so their copies are restored.
	// (With the loads locked: a parallel test's probe may be replaying
	// these copies.)
	if err := lockLoads(t.Context()); err != nil {
		t.Fatal(err)
	}
	err = os.RemoveAll(l.dir)
	unlockLoads()
	if err != nil {
		t.Fatal(err)
	}
	l2, logs := newLoader(t)
	v3, err := l2.Load(t.Context(), so["v3"])
	if err != nil {
		t.Fatal(err)
	}
	hello(t, v3, "hey, Ada")
	hello(t, v1, "hello, Ada")
	// (Restored into l2's directory, or into another test's if its Load
	// came first: tests run in parallel and the list is process-wide.)
	if err := lockLoads(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, inst := range []*Instance{v1, v2} {
		p := openBySum[inst.Sum()].path
		if _, err := os.Stat(p); err != nil || strings.HasPrefix(p, l.dir) {
			t.Errorf("copy of %s not restored (now %s: %v)\nlogs:\n%s", inst.Manifest().Version, p, err, logs)
		}
	}
	unlockLoads()

	// Copies that vanish after the replay list was made, before the probe
	// child opens them (someone cleans the directory right then): the
	// probe fails on the replay, the copies are restored, it runs again.
	removed := 0
	setHook := func(h func(string)) { // loads read it with the loads locked
		if err := lockLoads(context.Background()); err != nil {
			t.Fatal(err)
		}
		testHookBeforeProbe = h
		unlockLoads()
	}
	setHook(func(candidate string) {
		if removed > 0 || !strings.HasPrefix(candidate, l2.dir) {
			return
		}
		entries, _ := os.ReadDir(l2.dir)
		for _, e := range entries {
			if p := filepath.Join(l2.dir, e.Name()); p != candidate && os.Remove(p) == nil {
				removed++
			}
		}
	})
	t.Cleanup(func() { setHook(nil) })
	v4, err := l2.Load(t.Context(), so["v4"])
	if err != nil {
		t.Fatalf("a copy removed during the probe: %v\nlogs:\n%s", err, logs)
	}
	hello(t, v4, "howdy, Ada")
	if removed == 0 || !strings.Contains(logs.String(), "vanished during the probe") {
		t.Errorf("removed %d copies during the probe; logs:\n%s", removed, logs)
	}
}

const noModuleSrc = `package main

import "github.com/hotmod/hotmod/sdk"

var Greeter = sdk.New("nomodule", "1.0.0")

func main() {}
`

const wrongTypeSrc = `package main

var Module = "greeter"

func main() {}
`

const invalidSrc = `package main

import "github.com/hotmod/hotmod/sdk"

var Module = sdk.New("Bad Name", "1.0")

func main() {}
`

// A Module variable of type sdk.Module (not a pointer) is accepted too.
const valueModuleSrc = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = *sdk.New("value", "1.0.0").Handle("hello", func(_ context.Context, p map[string]any) (map[string]any, error) {
	return map[string]any{"message": "value says hello, " + p["name"].(string)}, nil
})

func main() {}
`

// toolchainAvailable reports whether the go command can run the given
// toolchain (it may have to fetch it through the module proxy).
func toolchainAvailable(version string) bool {
	cmd := exec.Command("go", "version")
	cmd.Env = append(os.Environ(), "GOTOOLCHAIN="+version)
	out, err := cmd.CombinedOutput()
	return err == nil && strings.Contains(string(out), version)
}

// changedSDK writes a module that builds greeter against a copy of the sdk
// whose only change is a comment: a different version of a shared package.
func changedSDK(t *testing.T) string {
	dir := plugintest.Example(t, "greeter")
	sdkCopy := filepath.Join(t.TempDir(), "sdk")
	if err := os.CopyFS(sdkCopy, os.DirFS(filepath.Join(plugintest.Repo(t), "sdk"))); err != nil {
		t.Fatal(err)
	}
	doc := filepath.Join(sdkCopy, "doc.go")
	data, err := os.ReadFile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(doc, append([]byte("// A changed comment.\n\n"), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	goMod := filepath.Join(dir, "go.mod")
	mod, err := os.ReadFile(goMod)
	if err != nil {
		t.Fatal(err)
	}
	orig := filepath.Join(plugintest.Repo(t), "sdk")
	if !bytes.Contains(mod, []byte("=> "+orig)) {
		t.Fatalf("go.mod does not replace the sdk with %s:\n%s", orig, mod)
	}
	if err := os.WriteFile(goMod, bytes.ReplaceAll(mod, []byte("=> "+orig), []byte("=> "+sdkCopy)), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestRefusals(t *testing.T) {
	t.Parallel()
	const oldGo = "go1.25.5"
	keep := t.TempDir()
	source := func(src string) func(t *testing.T) string {
		return func(t *testing.T) string { return plugintest.Source(t, src) }
	}
	greeter := func(t *testing.T) string { return plugintest.Example(t, "greeter") }
	specs := map[string]buildSpec{
		"good":      {dir: greeter, keepDir: keep},
		"nomodule":  {dir: source(noModuleSrc), keepDir: keep},
		"wrongtype": {dir: source(wrongTypeSrc), keepDir: keep},
		"invalid":   {dir: source(invalidSrc), keepDir: keep},
		"value":     {dir: source(valueModuleSrc), keepDir: keep},
		"sdk":       {dir: changedSDK, keepDir: keep},
	}
	if !raceEnabled { // under -race, a -race plugin is what the host needs
		specs["race"] = buildSpec{dir: greeter, env: []string{"GOFLAGS=-race"}, keepDir: keep}
	}
	haveOldGo := toolchainAvailable(oldGo)
	if haveOldGo {
		specs["oldgo"] = buildSpec{dir: greeter, env: []string{"GOTOOLCHAIN=" + oldGo}, keepDir: keep}
	} else {
		t.Logf("%s is not available: skipping the old-toolchain cases", oldGo)
	}
	so := buildAll(t, specs)

	good, err := os.ReadFile(so["good"])
	if err != nil {
		t.Fatal(err)
	}
	so["truncated"] = filepath.Join(keep, "truncated.so")
	if err := os.WriteFile(so["truncated"], good[:len(good)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	so["random"] = filepath.Join(keep, "random.so")
	if err := os.WriteFile(so["random"], []byte(rand.Text()+rand.Text()), 0o644); err != nil {
		t.Fatal(err)
	}

	l, _ := newLoader(t)
	ctx := t.Context()
	alive, err := l.Load(ctx, so["good"])
	if err != nil {
		t.Fatal(err)
	}
	hello(t, alive, "hello, Ada")

	hostGo := hostBuildInfo().GoVersion
	// The first four are refused by the preflight: no code of theirs runs,
	// not even in a child.
	preflighted := map[string]bool{"oldgo": true, "race": true, "truncated": true, "random": true}
	tests := []struct {
		name string
		want []string
	}{
		{"oldgo", []string{"built with " + oldGo + ", this host runs " + hostGo, "rebuild with " + hostGo}},
		{"race", []string{"built with -race, this host without -race"}},
		{"truncated", []string{"not a Go plugin", "truncated"}},
		{"random", []string{"not a Go plugin"}},
		{"nomodule", []string{"has no exported variable Module", "declare `var Module = sdk.New(name, version)…` in its main package"}},
		{"wrongtype", []string{"its exported Module is a variable of type string, not *sdk.Module"}},
		{"invalid", []string{`module name "Bad Name"`, `version "1.0" is not a semantic version`}},
		{"sdk", []string{"the trial load in a child process failed: plugin was built with a different version of package github.com/hotmod/hotmod/sdk",
			"two different copies of package github.com/hotmod/hotmod/sdk", "the artifact has it from module github.com/hotmod/hotmod/sdk v0.0.0 => ",
			"point the module's go.mod at this host's sdk"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if so[tt.name] == "" {
				t.Skip("not built")
			}
			inst, err := l.Load(ctx, so[tt.name])
			if err == nil {
				t.Fatalf("Load succeeded: %+v", inst.Manifest())
			}
			t.Logf("refused: %v", err)
			if !errors.Is(err, sdk.ErrIncompatible) {
				t.Errorf("error %v is not incompatible", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain:\n%s", err, w)
				}
			}
			if preflighted[tt.name] && strings.Contains(err.Error(), "child process") {
				t.Errorf("refused by the probe, want by the preflight")
			}
			if !strings.Contains(err.Error(), so[tt.name]) {
				t.Errorf("error %v does not name the artifact", err)
			}
			if _, statErr := os.Stat(filepath.Join(l.dir, sha(t, so[tt.name])+".so")); statErr == nil {
				t.Errorf("the refused artifact's private copy was left behind")
			}
			hello(t, alive, "hello, Ada") // the host is alive and serving
		})
	}

	t.Run("value", func(t *testing.T) {
		inst, err := l.Load(ctx, so["value"])
		if err != nil {
			t.Fatal(err)
		}
		hello(t, inst, "value says hello, Ada")
	})

	// The probe alone, on artifacts that preflight would have refused: opening
	// them kills (or poisons) the process that tries, which must be the child.
	// A plugin from another Go release kills a process that has no plugin
	// open yet; opened after other plugins, it is taken for the last of them.
	probeCases := []struct {
		name   string
		replay bool
		want   string
	}{
		{"oldgo", false, "fatal error: runtime: no plugin module data"},
		{"oldgo", true, "plugin already loaded"},
		{"race", true, "plugin was built with a different version of package"},
		{"truncated", true, ""}, // dlopen fails, or the child dies of SIGBUS
	}
	for _, tt := range probeCases {
		t.Run(fmt.Sprintf("probe/%s/replay=%v", tt.name, tt.replay), func(t *testing.T) {
			if so[tt.name] == "" {
				t.Skip("not built")
			}
			// With the loads locked, as the loader probes: other tests
			// remove copies of loaded plugins only with the loads locked.
			if err := lockLoads(ctx); err != nil {
				t.Fatal(err)
			}
			var replay []replayEntry
			if tt.replay {
				replay = l.replayList()
			}
			_, err := probe(ctx, replay, so[tt.name])
			unlockLoads()
			var pe *probeError
			if !errors.As(err, &pe) {
				t.Fatalf("probe = %v, want a refusal", err)
			}
			t.Logf("probe refused %s: %v", tt.name, refusal(so[tt.name], err, nil))
			if !strings.Contains(pe.msg, tt.want) {
				t.Errorf("probe error %q, want it to contain %q", pe.msg, tt.want)
			}
			hello(t, alive, "hello, Ada")
		})
	}
}

func sha(t *testing.T, path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

const crashySrc = `package main

import (
	"context"
	"errors"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("crashy", "1.0.0").
	Handle("boom", func(context.Context, map[string]any) (map[string]any, error) { panic("kaboom") }).
	Handle("ok", func(context.Context, map[string]any) (map[string]any, error) { return map[string]any{"ok": true}, nil }).
	OnInit(func(_ context.Context, config map[string]any) error {
		if config["panic"] == true {
			panic("init exploded")
		}
		return nil
	}).
	OnCheck(func(context.Context) error { panic(errors.New("check exploded")) })

func main() {}
`

func TestPanics(t *testing.T) {
	t.Parallel()
	so := plugintest.Build(t, plugintest.Source(t, crashySrc))
	l, logs := newLoader(t)
	inst, err := l.Load(t.Context(), so)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	_, err = inst.Invoke(ctx, "boom", nil)
	if !errors.Is(err, sdk.ErrPanic) || err.Error() != "panic: crashy.boom panicked: kaboom" {
		t.Errorf("boom: %v, want the panic as an error", err)
	}
	if l := logs.String(); !strings.Contains(l, "native module panicked") || !strings.Contains(l, "method=boom") ||
		!strings.Contains(l, "stack=") || !strings.Contains(l, "panic(") {
		t.Errorf("the panic was not logged with its stack:\n%s", l)
	}
	if out, err := inst.Invoke(ctx, "ok", nil); err != nil || !reflect.DeepEqual(out, map[string]any{"ok": true}) {
		t.Errorf("ok after a panic = %v, %v", out, err)
	}
	if _, err := inst.Invoke(ctx, "nope", nil); !errors.Is(err, sdk.ErrUnknownMethod) {
		t.Errorf("unknown method: %v", err)
	}

	if err := inst.Init(ctx, map[string]any{"panic": true}); !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "crashy's OnInit hook panicked: init exploded") {
		t.Errorf("Init panicking: %v", err)
	}
	if err := inst.Init(ctx, nil); err != nil {
		t.Errorf("Init: %v", err)
	}
	if err := inst.Check(ctx); !errors.Is(err, sdk.ErrPanic) || !strings.Contains(err.Error(), "check exploded") {
		t.Errorf("Check: %v", err)
	}
	if err := inst.Close(); err != nil {
		t.Errorf("Close without a hook: %v", err)
	}
}

const adderSrc = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("adder", "1.0.0").
	Handle("add", func(_ context.Context, p map[string]any) (map[string]any, error) {
		a, err := sdk.Int(p, "a")
		if err != nil {
			return nil, err
		}
		b, err := sdk.Int(p, "b")
		if err != nil {
			return nil, err
		}
		return map[string]any{"sum": a + b}, nil
	}).
	Handle("nop", func(context.Context, map[string]any) (map[string]any, error) { return nil, nil })

func main() {}
`

// BenchmarkInvoke compares a call through a native Instance with a direct
// call of the same *sdk.Module.
func BenchmarkInvoke(b *testing.B) {
	so := plugintest.Build(b, plugintest.Source(b, adderSrc))
	l := NewLoader(b.TempDir(), slog.New(slog.DiscardHandler))
	inst, err := l.Load(b.Context(), so)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	params := map[string]any{"a": int64(1), "b": int64(2)}
	for _, method := range []string{"add", "nop"} {
		b.Run(method+"/native", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := inst.Invoke(ctx, method, params); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(method+"/direct", func(b *testing.B) {
			b.ReportAllocs()
			var m sdk.Invoker = inst.mod
			for b.Loop() {
				if _, err := m.Invoke(ctx, method, params); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Both ways in alternating batches, so that a busy machine slows
		// both alike: reports each one's ns/call and the overhead in percent.
		b.Run(method+"/interleaved", func(b *testing.B) {
			var direct sdk.Invoker = inst.mod
			var native sdk.Invoker = inst
			var tn, td time.Duration
			const batch = 1000
			for b.Loop() {
				start := time.Now()
				for range batch {
					native.Invoke(ctx, method, params)
				}
				mid := time.Now()
				for range batch {
					direct.Invoke(ctx, method, params)
				}
				tn, td = tn+mid.Sub(start), td+time.Since(mid)
			}
			calls := float64(b.N * batch)
			b.ReportMetric(float64(tn.Nanoseconds())/calls, "native-ns/call")
			b.ReportMetric(float64(td.Nanoseconds())/calls, "direct-ns/call")
			b.ReportMetric(100*(float64(tn)/float64(td)-1), "overhead-%")
		})
		// The goroutine label (see internal/goroutines) against the same
		// instance without it, in rounds of four short batches (ABBA, so
		// that neither goes first more often). A busy machine stretches
		// some rounds a lot: the medians of the rounds are reported.
		b.Run(method+"/label", func(b *testing.B) {
			bare := *inst
			bare.tag = goroutines.Tag{}
			const batch = 100
			run := func(i sdk.Invoker) float64 {
				start := time.Now()
				for range batch {
					i.Invoke(ctx, method, params)
				}
				return float64(time.Since(start).Nanoseconds()) / batch
			}
			var labelled, plain, diff []float64
			for b.Loop() {
				l, p := run(inst), run(&bare)
				p, l = (p+run(&bare))/2, (l+run(inst))/2
				labelled, plain, diff = append(labelled, l), append(plain, p), append(diff, l-p)
			}
			b.ReportMetric(median(labelled), "labelled-ns/call")
			b.ReportMetric(median(plain), "bare-ns/call")
			b.ReportMetric(median(diff), "label-ns/call")
		})
	}
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// realHostSrc is a host program: it loads each argument after the first (the
// loader's directory), building it first with build.Native when it is a
// directory, and says what happened.
const realHostSrc = `package main

import (
	"context"
	"fmt"
	"os"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/native"
)

func main() {
	ctx := context.Background()
	l := native.NewLoader(os.Args[1], nil)
	for _, p := range os.Args[2:] {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			so, err := build.Native(ctx, build.Options{Dir: p, Out: os.Args[1] + "-out"})
			if err != nil {
				fmt.Println("BUILD FAILED", err)
				continue
			}
			p = so
		}
		inst, err := l.Load(ctx, p)
		if err != nil {
			fmt.Println("REFUSED", err)
			continue
		}
		out, err := inst.Invoke(ctx, "hello", map[string]any{"name": "Ada"})
		fmt.Println("LOADED", inst.Manifest().Version, out, err)
	}
}
`

// TestRealHost checks the loader in a real program rather than a test
// binary (its build info lists modules; the probe re-executes a program),
// built with -trimpath: what build.Native makes inside that program loads
// into it, and a plugin built without -trimpath is refused.
func TestRealHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a host program with -trimpath (slow the first time)")
	}
	t.Parallel()
	repo := plugintest.Repo(t)
	tmp := t.TempDir()
	src := filepath.Join(tmp, "main.go")
	if err := os.WriteFile(src, []byte(realHostSrc), 0o644); err != nil {
		t.Fatal(err)
	}
	// The program must live inside the module to import internal packages:
	// an overlay puts it there without writing into the repository.
	pkg := filepath.Join(repo, "internal", "native", "zz_testhost_"+rand.Text()[:8])
	overlay, err := json.Marshal(map[string]any{"Replace": map[string]string{filepath.Join(pkg, "main.go"): src}})
	if err != nil {
		t.Fatal(err)
	}
	overlayPath := filepath.Join(tmp, "overlay.json")
	if err := os.WriteFile(overlayPath, overlay, 0o644); err != nil {
		t.Fatal(err)
	}
	host := filepath.Join(tmp, "host")
	cmd := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-overlay", overlayPath, "-o", host, pkg)
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the host: %v\n%s", err, out)
	}

	greeter := plugintest.Example(t, "greeter")
	untrimmed := plugintest.Build(t, greeter) // matches the test binary, not the host
	cmd = exec.CommandContext(t.Context(), host, filepath.Join(tmp, "cache"), greeter, untrimmed)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("host: %v\n%s", err, out)
	}
	t.Logf("host says:\n%s", out)
	for _, want := range []string{
		"LOADED 1.0.0 map[message:hello, Ada] <nil>",
		"REFUSED incompatible: " + untrimmed + " cannot be loaded as a native module: ",
		"built without -trimpath, this host with -trimpath: native modules need the host's exact build settings — rebuild with -trimpath",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("host output lacks %q", want)
		}
	}
}
