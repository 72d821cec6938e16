package process

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// The test binary is also the child of most tests: started with
// HOTMOD_TEST_CHILD set (through a launch file's env), TestMain runs
// runChild instead of the tests. Modes:
//
//	helper     sdk.Main(helperModule): a module whose methods misbehave on request
//	caller     helper, declaring that it calls "callee" and "helper"
//	helper-v1  helper, speaking protocol version 1 whatever the host offers
//	jsonv2     a single-threaded child that speaks version 2 in JSON by hand
//	           (nested_test.go)
//	silent     never writes its hello
//	babble     writes "hello world" instead of its hello
//	version3   picks protocol version 3
//	refuse     answers the hello with an error
//	exit       writes to stderr and exits with status 3 at once
//	host       a host: loads the launch file HOTMOD_TEST_LAUNCH, prints its
//	           child's pid and waits to be killed
//	echo       copies length-prefixed frames from stdin to stdout (the
//	           baseline benchmark)
const testChildEnv = "HOTMOD_TEST_CHILD"

// sharedDir holds artifacts built once for the whole test binary.
var sharedDir string

func TestMain(m *testing.M) {
	if mode := os.Getenv(testChildEnv); mode != "" {
		runChild(mode)
		return
	}
	var err error
	if sharedDir, err = os.MkdirTemp("", "hotmod-process-test-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(sharedDir)
	os.Exit(code)
}

func runChild(mode string) {
	switch mode {
	case "helper", "caller", "helper-v1":
		if mode == "helper-v1" {
			os.Setenv(envVersions, "1-1") // as a module built with an sdk of version 1 would
		}
		if d, err := time.ParseDuration(os.Getenv("HOTMOD_TEST_EXIT_AFTER")); err == nil {
			go func() {
				time.Sleep(d)
				fmt.Fprintln(os.Stderr, "helper: exiting on purpose")
				os.Exit(4)
			}()
		}
		m := helperModule()
		if mode == "caller" {
			m.Requires("callee", "^1").Requires("helper", "^1")
		}
		// HOTMOD_TEST_CPUPROFILE=file profiles the child, for tuning the
		// sdk's side (written when the module is closed).
		if p := os.Getenv("HOTMOD_TEST_CPUPROFILE"); p != "" {
			f, _ := os.Create(p)
			pprof.StartCPUProfile(f)
			m.OnClose(func() error { pprof.StopCPUProfile(); return f.Close() })
		}
		sdk.Main(m)
	case "silent":
		time.Sleep(time.Hour)
	case "babble":
		fmt.Println("hello world")
		time.Sleep(time.Hour)
	case "jsonv2":
		jsonChild()
	case "version3":
		fmt.Println(`{"hotmod":"process","version":3,"encoding":"cbor","manifest":{}}`)
		time.Sleep(time.Hour)
	case "refuse":
		fmt.Println(`{"hotmod":"process","error":"this module needs a GPU"}`)
		os.Exit(1)
	case "exit":
		fmt.Fprintln(os.Stderr, "cannot start: the configuration file /etc/helper.conf is missing")
		os.Exit(3)
	case "echo":
		in, out := bufio.NewReader(os.Stdin), os.Stdout
		buf := make([]byte, 4, 64<<10)
		for {
			if _, err := io.ReadFull(in, buf[:4]); err != nil {
				os.Exit(0)
			}
			n := int(binary.BigEndian.Uint32(buf[:4]))
			buf = buf[:4+n]
			if _, err := io.ReadFull(in, buf[4:]); err != nil {
				os.Exit(1)
			}
			out.Write(buf)
		}
	case "host":
		exe, _ := os.Executable()
		inst, err := NewLoader(Config{Heartbeat: -1, AllowCommands: []string{exe}}).Load(context.Background(), os.Getenv("HOTMOD_TEST_LAUNCH"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(inst.PIDs()[0])
		time.Sleep(time.Hour)
	}
	fmt.Fprintf(os.Stderr, "unknown %s %q\n", testChildEnv, mode)
	os.Exit(2)
}

type addIn struct {
	A int64 `hotmod:"a,id=1,required"`
	B int64 `hotmod:"b,id=2,required"`
}

type addOut struct {
	Sum int64 `hotmod:"sum,id=1"`
}

// helperModule is the test binary's module.
func helperModule() *sdk.Module {
	var config map[string]any
	var mu sync.Mutex
	return sdk.New("helper", "1.0.0").
		Method(sdk.Func("add", func(_ context.Context, in addIn) (addOut, error) {
			return addOut{Sum: in.A + in.B}, nil
		})).
		Handle("echo", func(_ context.Context, p map[string]any) (map[string]any, error) {
			return p, nil
		}).
		Handle("traceparent", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			return map[string]any{"traceparent": sdk.TraceParent(ctx)}, nil
		}).
		Handle("sleep", func(ctx context.Context, p map[string]any) (map[string]any, error) {
			ms, _ := sdk.Int(p, "ms")
			select {
			case <-time.After(time.Duration(ms) * time.Millisecond):
				return map[string]any{"slept": ms, "pid": int64(os.Getpid())}, nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}).
		Handle("spin", func(context.Context, map[string]any) (map[string]any, error) {
			time.Sleep(time.Hour) // ignores its context
			return nil, nil
		}).
		Handle("garbage", func(context.Context, map[string]any) (map[string]any, error) {
			// Straight to the protocol's file descriptor: the sdk pointed
			// os.Stdout at stderr, which a module cannot get around by
			// accident, but can on purpose.
			os.NewFile(1, "stdout").Write([]byte("\x00\x00\x00\x05oops!"))
			time.Sleep(time.Hour)
			return nil, nil
		}).
		Handle("stdout", func(context.Context, map[string]any) (map[string]any, error) {
			// What a module that kept the real stdout from before sdk.Main does.
			os.NewFile(1, "stdout").Write([]byte("hello from the module\n"))
			time.Sleep(time.Hour)
			return nil, nil
		}).
		Handle("crash", func(context.Context, map[string]any) (map[string]any, error) {
			go panic("a goroutine of the module panicked")
			time.Sleep(time.Hour)
			return nil, nil
		}).
		Handle("panic", func(context.Context, map[string]any) (map[string]any, error) {
			panic("the handler panicked")
		}).
		Handle("print", func(_ context.Context, p map[string]any) (map[string]any, error) {
			fmt.Println("printed by the module:", p["text"])
			return map[string]any{}, nil
		}).
		Handle("flood", func(_ context.Context, p map[string]any) (map[string]any, error) {
			line := strings.Repeat("x", 1023) + "\n"
			n, _ := sdk.Int(p, "bytes")
			for written := int64(0); written < n; written += int64(len(line)) {
				os.Stderr.WriteString(line)
			}
			return map[string]any{}, nil
		}).
		Handle("pid", func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{"pid": int64(os.Getpid())}, nil
		}).
		Handle("config", func(context.Context, map[string]any) (map[string]any, error) {
			mu.Lock()
			defer mu.Unlock()
			return map[string]any{"config": config}, nil
		}).
		// Calls to other modules, through the host (nested_test.go):
		// relay calls what its params say; recurse calls helper.recurse
		// n deep; fanout makes n calls to callee.slow at once.
		Handle("relay", relay).
		Handle("recurse", func(ctx context.Context, p map[string]any) (map[string]any, error) {
			n, _ := sdk.Int(p, "n")
			if n <= 0 {
				return map[string]any{"depth": int64(0)}, nil
			}
			out, err := sdk.Call(ctx, "helper", "recurse", map[string]any{"n": n - 1})
			if err != nil {
				return nil, err
			}
			return map[string]any{"depth": out["depth"].(int64) + 1}, nil
		}).
		Handle("fanout", func(ctx context.Context, p map[string]any) (map[string]any, error) {
			n, _ := sdk.Int(p, "n")
			ms, _ := sdk.Int(p, "ms")
			codes := make([]any, n)
			var wg sync.WaitGroup
			for k := range codes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := sdk.Call(ctx, "callee", "slow", map[string]any{"ms": ms})
					codes[k] = string(sdk.CodeOf(err))
				}()
			}
			wg.Wait()
			return map[string]any{"codes": codes}, nil
		}).
		Handle("deadline", func(ctx context.Context, _ map[string]any) (map[string]any, error) {
			d, ok := ctx.Deadline()
			if !ok {
				return map[string]any{"has": false}, nil
			}
			return map[string]any{"has": true, "left_ms": time.Until(d).Milliseconds()}, nil
		}).
		OnInit(func(_ context.Context, c map[string]any) error {
			if c["fail"] == true {
				return sdk.Errorf(sdk.CodeModule, "init refused the configuration")
			}
			mu.Lock()
			config = c
			mu.Unlock()
			return nil
		}).
		OnCheck(func(context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			if config["bad_check"] == true {
				return sdk.Errorf(sdk.CodeModule, "self-check failed")
			}
			return nil
		}).
		OnClose(func() error {
			mu.Lock()
			defer mu.Unlock()
			if config["close_error"] == true {
				return sdk.Errorf(sdk.CodeModule, "close failed")
			}
			return nil
		})
}

// relay calls the module params.target names, through the host, and returns
// what it returns. With timeout_ms, it gives the call a deadline of its own;
// with cancel_ms, it cancels it after that long.
func relay(ctx context.Context, p map[string]any) (map[string]any, error) {
	if ms, _ := sdk.Int(p, "timeout_ms"); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
		defer cancel()
	}
	if ms, _ := sdk.Int(p, "cancel_ms"); ms > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer time.AfterFunc(time.Duration(ms)*time.Millisecond, cancel).Stop()
	}
	target, _ := sdk.String(p, "target")
	method, _ := sdk.String(p, "method")
	params, _ := p["params"].(map[string]any)
	return sdk.Call(ctx, target, method, params)
}

// launch writes a launch file that starts the test binary in mode, with
// extra environment, and returns its path.
func launch(t testing.TB, mode string, env ...string) string {
	t.Helper()
	return launchAs(t, mode, "cbor", env...)
}

// launchAs is launch with the encoding the launch file asks for.
func launchAs(t testing.TB, mode, protocol string, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	e := map[string]string{testChildEnv: mode}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e[k] = v
	}
	data, err := json.Marshal(map[string]any{"command": exe, "args": []string{"-test.run=^$"}, "protocol": protocol, "env": e})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), mode+LaunchExt)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig is a Config with short timings, a logger that keeps records,
// a private Dir and the commands the tests start allowed.
func testConfig(t testing.TB) (Config, *logRecorder) {
	rec := &logRecorder{}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		// The test binary is the child of most tests; sh and python3 start
		// the script modules.
		AllowCommands: []string{exe, "sh", "python3"},
		Logger:        slog.New(rec),
		Grace:         300 * time.Millisecond,
		StartTimeout:  20 * time.Second, // race-enabled test binaries start slowly on a busy machine
		Heartbeat:     -1,
		Backoff:       5 * time.Millisecond,
		Dir:           t.TempDir(),
	}, rec
}

// load loads path with cfg and closes the instance when the test ends.
func load(t testing.TB, cfg Config, path string) *Instance {
	t.Helper()
	inst, err := NewLoader(cfg).Load(context.Background(), path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	t.Cleanup(func() { inst.Close() })
	return inst
}

// logRecorder is a slog.Handler that keeps every record's message and
// attributes as text.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var b bytes.Buffer
	b.WriteString(rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}

func (r *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorderView{r, as}
}

func (r *logRecorder) WithGroup(string) slog.Handler { return r }

// find returns the first line that contains every part, or "".
func (r *logRecorder) find(parts ...string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
next:
	for _, l := range r.lines {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		return l
	}
	return ""
}

// logRecorderView is a logRecorder with attributes of its own.
type logRecorderView struct {
	r     *logRecorder
	attrs []slog.Attr
}

func (v *logRecorderView) Enabled(context.Context, slog.Level) bool { return true }
func (v *logRecorderView) Handle(ctx context.Context, rec slog.Record) error {
	rec.AddAttrs(v.attrs...)
	return v.r.Handle(ctx, rec)
}
func (v *logRecorderView) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorderView{v.r, append(append([]slog.Attr(nil), v.attrs...), as...)}
}
func (v *logRecorderView) WithGroup(string) slog.Handler { return v }

// jsonChild is the jsonv2 mode: a module that speaks protocol version 2 in
// JSON, one request at a time, as a script would. relay calls
// params.target; stale does the same for a request that does not exist,
// and returns the reply it got. It requires callee, unless
// HOTMOD_TEST_NO_REQUIRES is set.
func jsonChild() {
	m := sdk.New("jsonkid", "1.0.0").Handle("relay", relay).Handle("stale", relay)
	if os.Getenv("HOTMOD_TEST_NO_REQUIRES") == "" {
		m.Requires("callee", "^1")
	}
	man := m.Manifest()
	in, out := bufio.NewReader(os.Stdin), os.Stdout
	send := func(v any) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		out.Write(append(b, '\n'))
	}
	read := func() map[string]any {
		line, err := in.ReadBytes('\n')
		if err != nil {
			os.Exit(0)
		}
		var m map[string]any
		d := json.NewDecoder(bytes.NewReader(line))
		d.UseNumber()
		if err := d.Decode(&m); err != nil {
			panic(err)
		}
		return m
	}
	send(map[string]any{"hotmod": "process", "version": 2, "encoding": "json", "manifest": man})
	next := 0
	for {
		m := read()
		switch m["t"] {
		case "call":
			p, _ := m["params"].(map[string]any)
			parent := m["id"]
			if m["method"] == "stale" {
				parent = 999999
			}
			next++
			send(map[string]any{"t": "call", "id": next, "parent": parent, "target": p["target"], "method": p["method"], "params": p["params"]})
			var r map[string]any
			for r == nil || r["id"] != json.Number(fmt.Sprint(next)) {
				r = read() // nothing else comes meanwhile in these tests
			}
			switch {
			case m["method"] == "stale":
				send(map[string]any{"t": "result", "id": m["id"], "result": map[string]any{"error": r["error"]}})
			case r["t"] == "error":
				send(map[string]any{"t": "error", "id": m["id"], "error": r["error"]})
			default:
				send(map[string]any{"t": "result", "id": m["id"], "result": r["result"]})
			}
		case "cancel":
		case "close":
			send(map[string]any{"t": "result", "id": m["id"]})
			os.Exit(0)
		default: // init, check, ping
			send(map[string]any{"t": "result", "id": m["id"]})
		}
	}
}
