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
//	silent     never writes its hello
//	babble     writes "hello world" instead of its hello
//	version2   picks protocol version 2
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
	case "helper":
		if d, err := time.ParseDuration(os.Getenv("HOTMOD_TEST_EXIT_AFTER")); err == nil {
			go func() {
				time.Sleep(d)
				fmt.Fprintln(os.Stderr, "helper: exiting on purpose")
				os.Exit(4)
			}()
		}
		m := helperModule()
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
	case "version2":
		fmt.Println(`{"hotmod":"process","version":2,"encoding":"cbor","manifest":{}}`)
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
		inst, err := NewLoader(Config{Heartbeat: -1}).Load(context.Background(), os.Getenv("HOTMOD_TEST_LAUNCH"))
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
		Handle("pid", func(context.Context, map[string]any) (map[string]any, error) {
			return map[string]any{"pid": int64(os.Getpid())}, nil
		}).
		Handle("config", func(context.Context, map[string]any) (map[string]any, error) {
			mu.Lock()
			defer mu.Unlock()
			return map[string]any{"config": config}, nil
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

// launch writes a launch file that starts the test binary in mode, with
// extra environment, and returns its path.
func launch(t testing.TB, mode string, env ...string) string {
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
	data, err := json.Marshal(map[string]any{"command": exe, "args": []string{"-test.run=^$"}, "protocol": "cbor", "env": e})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), mode+LaunchExt)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig is a Config with short timings, a logger that keeps records
// and a private Dir.
func testConfig(t testing.TB) (Config, *logRecorder) {
	rec := &logRecorder{}
	return Config{
		Logger:       slog.New(rec),
		Grace:        300 * time.Millisecond,
		StartTimeout: 20 * time.Second, // race-enabled test binaries start slowly on a busy machine
		Heartbeat:    -1,
		Backoff:      5 * time.Millisecond,
		Dir:          t.TempDir(),
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
