package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/internal/wasm"
)

// Artifacts are built once per test binary (a build takes seconds) into
// shared, and compiled code is cached in cacheDir across the tests, as a
// host caches it across restarts.
var (
	shared   string
	cacheDir string

	artifactsMu sync.Mutex
	artifacts   = map[string]string{}
)

func TestMain(m *testing.M) {
	var err error
	if shared, err = os.MkdirTemp("", "hotmod-wasm-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cacheDir = testCacheDir()
	code := m.Run()
	os.RemoveAll(shared)
	os.Exit(code)
}

// testCacheDir is where the tests keep compiled code between runs (a cold
// compile takes seconds, tens of seconds under -race). wazero keys its
// cache by its own version, which a test binary does not know (its build
// info has no dependencies, so wazero says "dev"): the directory is named
// by a hash of go.sum instead, so that another wazero never reads this
// one's code.
func testCacheDir() string {
	sum, err := os.ReadFile(filepath.Join("..", "..", "go.sum"))
	base, cerr := os.UserCacheDir()
	if err != nil || cerr != nil {
		return filepath.Join(shared, "cache")
	}
	h := sha256.Sum256(sum)
	return filepath.Join(base, "hotmod", "wasm-test", hex.EncodeToString(h[:6]))
}

// artifact builds a module once: key names it, dir returns its sources
// (called only on the first use), env is extra environment for go build.
func artifact(t testing.TB, key string, dir func() string, env ...string) string {
	t.Helper()
	artifactsMu.Lock()
	defer artifactsMu.Unlock()
	if p, ok := artifacts[key]; ok {
		return p
	}
	src := dir()
	out := filepath.Join(shared, "artifacts", key)
	p, err := build.Wasm(context.Background(), build.Options{Dir: src, Out: out, Env: append([]string{"GOWORK=off"}, env...)})
	if err != nil {
		t.Fatalf("building %s: %v", key, err)
	}
	if raceEnabled {
		precompile(t, p, wasm.TierInterruptible)
	}
	artifacts[key] = p
	return p
}

// Under the race detector wazero's compiler is instrumented and compiles a
// guest in a minute or two instead of seconds. So the race-enabled tests
// take compiled code from the shared cache, filled by the precompile
// command (built once, without -race, and naming wazero's version as this
// test binary does: "dev", the version of a binary without module
// information).
var (
	precompiler     string
	precompilerOnce sync.Once
	precompilerErr  error
	precompiledMu   sync.Mutex
	precompiled     = map[string]bool{} // path + tier
)

// precompile puts the code of the artifact at path, compiled for tier, in
// the shared cache (under -race only; elsewhere a Load compiles it as fast).
func precompile(t testing.TB, path string, tier wasm.Tier) {
	t.Helper()
	if !raceEnabled {
		return
	}
	precompilerOnce.Do(func() {
		precompiler = filepath.Join(shared, "precompile")
		cmd := exec.Command("go", "build", "-o", precompiler,
			"-ldflags=-X github.com/tetratelabs/wazero/internal/version.version=dev", "./internal/wasm/precompile")
		cmd.Dir = plugintest.Repo(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			precompilerErr = fmt.Errorf("building the precompile command: %v\n%s", err, out)
		}
	})
	if precompilerErr != nil {
		t.Fatal(precompilerErr)
	}
	precompiledMu.Lock()
	defer precompiledMu.Unlock()
	if precompiled[path+"\x00"+string(tier)] {
		return
	}
	out, err := exec.Command(precompiler, "-cache", cacheDir, "-tiers", string(tier), path).CombinedOutput()
	if err != nil {
		t.Fatalf("precompiling %s for the %s tier: %v\n%s", path, tier, err, out)
	}
	precompiled[path+"\x00"+string(tier)] = true
}

// example builds examples/<name> as wasm (with the toolchain env picks).
func example(t testing.TB, name string, env ...string) string {
	t.Helper()
	return artifact(t, name+strings.Join(env, ","), func() string { return plugintest.Example(t, name) }, env...)
}

// source builds a module from the source of its main.go.
func source(t testing.TB, key, mainGo string) string {
	t.Helper()
	return artifact(t, key, func() string { return plugintest.Source(t, mainGo) })
}

// testGuest is a module that does, on request, everything a module should
// not: it is the test suite's punching bag.
const testGuest = `package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

type AB struct {
	A int64 ` + "`hotmod:\"a,id=1,required\"`" + `
	B int64 ` + "`hotmod:\"b,id=2,required\"`" + `
}

type Sum struct {
	Sum int64 ` + "`hotmod:\"sum,id=1\"`" + `
}

var (
	calls    int64
	greeting = "unset"
	hoard    [][]byte
)

var Module = sdk.New("testguest", "1.0.0").
	Method(sdk.Func("add", add)).
	Handle("add_dynamic", addDynamic).
	Handle("count", func(context.Context, map[string]any) (map[string]any, error) {
		calls++
		return map[string]any{"n": calls}, nil
	}).
	Handle("echo", func(_ context.Context, p map[string]any) (map[string]any, error) { return p, nil }).
	Handle("boom", func(context.Context, map[string]any) (map[string]any, error) { panic("boom") }).
	Handle("spin", func(_ context.Context, p map[string]any) (map[string]any, error) {
		n := int64(0)
		for {
			n++
			if n < 0 {
				return map[string]any{"n": n}, nil
			}
		}
	}).
	Handle("work", func(_ context.Context, p map[string]any) (map[string]any, error) {
		n, _ := sdk.Int(p, "n")
		x := uint64(1)
		for i := int64(0); i < n; i++ {
			x = x*6364136223846793005 + 1442695040888963407
			x ^= x >> 17
		}
		return map[string]any{"x": int64(x >> 1)}, nil
	}).
	Handle("hog", func(context.Context, map[string]any) (map[string]any, error) {
		for {
			hoard = append(hoard, make([]byte, 1<<20))
		}
	}).
	Handle("exit", func(context.Context, map[string]any) (map[string]any, error) {
		os.Exit(3)
		return nil, nil
	}).
	Handle("say", func(_ context.Context, p map[string]any) (map[string]any, error) {
		fmt.Println("to stdout:", p["text"])
		fmt.Fprintln(os.Stderr, "to stderr:", p["text"])
		return map[string]any{}, nil
	}).
	Handle("flood", func(_ context.Context, p map[string]any) (map[string]any, error) {
		line := strings.Repeat("x", 1023) + "\n"
		n, _ := p["bytes"].(int64)
		for written := int64(0); written < n; written += int64(len(line)) {
			os.Stdout.WriteString(line)
		}
		return map[string]any{}, nil
	}).
	Handle("fail", func(context.Context, map[string]any) (map[string]any, error) {
		return nil, fmt.Errorf("plain failure")
	}).
	Handle("greeting", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"greeting": greeting}, nil
	}).
	Handle("memstats", func(context.Context, map[string]any) (map[string]any, error) {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return map[string]any{"heap": int64(ms.HeapAlloc), "sys": int64(ms.Sys), "gcs": int64(ms.NumGC),
			"goroutines": int64(runtime.NumGoroutine()), "objects": int64(ms.HeapObjects)}, nil
	}).
	Handle("clock", func(context.Context, map[string]any) (map[string]any, error) {
		start := time.Now()
		time.Sleep(30 * time.Millisecond)
		return map[string]any{"year": int64(start.Year()), "slept_ns": int64(time.Since(start))}, nil
	}).
	Handle("files", func(context.Context, map[string]any) (map[string]any, error) {
		_, err := os.ReadDir("/")
		return map[string]any{"error": fmt.Sprint(err), "env": os.Getenv("HOME")}, nil
	}).
	OnInit(func(_ context.Context, cfg map[string]any) error {
		if g, ok := cfg["greeting"].(string); ok {
			greeting = g
		}
		if cfg["fail"] == true {
			return sdk.Errorf(sdk.CodeBadParams, "OnInit refuses this configuration")
		}
		return nil
	}).
	OnClose(func() error {
		fmt.Fprintln(os.Stderr, "closing after", calls, "calls")
		return nil
	})

func add(_ context.Context, in AB) (Sum, error) { return Sum{Sum: in.A + in.B}, nil }

func addDynamic(_ context.Context, p map[string]any) (map[string]any, error) {
	a, err := sdk.Int(p, "a")
	if err != nil {
		return nil, err
	}
	b, err := sdk.Int(p, "b")
	if err != nil {
		return nil, err
	}
	return map[string]any{"sum": a + b}, nil
}

func main() { sdk.Main(Module) }
`

// fsGuest asks for the file system and reads a file from its root.
const fsGuest = `package main

import (
	"context"
	"os"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("reader", "1.0.0").Needs(sdk.NeedFS).
	Handle("read", func(_ context.Context, p map[string]any) (map[string]any, error) {
		name, err := sdk.String(p, "name")
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile("/" + name)
		if err != nil {
			return nil, err
		}
		return map[string]any{"text": string(b)}, nil
	})

func main() { sdk.Main(Module) }
`

// clockGuest asks for the clock and tells the time.
const clockGuest = `package main

import (
	"context"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

var Module = sdk.New("clock", "1.0.0").Needs(sdk.NeedClock, sdk.NeedEnv).
	Handle("now", func(context.Context, map[string]any) (map[string]any, error) {
		return map[string]any{"unix": time.Now().Unix()}, nil
	})

func main() { sdk.Main(Module) }
`

// futureGuest speaks an ABI this host does not: it has the shape of a
// guest, and says it is version 2.
const futureGuest = `package main

//go:wasmexport hotmod_abi
func abi() uint32 { return 2<<16 | 3 }

func main() {}
`

// initPanicGuest panics during package initialisation.
const initPanicGuest = `package main

import "github.com/hotmod/hotmod/sdk"

var Module = sdk.New("broken", "1.0.0")

func init() { panic("cannot start") }

func main() { sdk.Main(Module) }
`

// newLoader returns a Loader with the shared cache, closed when the test
// ends, and what it logs.
func newLoader(t testing.TB, cfg wasm.Config) (*wasm.Loader, *plugintest.Log) {
	t.Helper()
	lg := &plugintest.Log{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	l, err := wasm.NewLoader(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(context.Background()); err != nil {
			t.Errorf("Loader.Close: %v", err)
		}
	})
	return l, lg
}

func load(t testing.TB, l *wasm.Loader, path string) *wasm.Instance {
	t.Helper()
	i, err := l.Load(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { i.Close() })
	return i
}
