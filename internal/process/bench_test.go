package process

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/build"
	"github.com/hotmod/hotmod/internal/plugintest"
	"github.com/hotmod/hotmod/sdk"
)

// adderGo is the module the benchmarks call: {"a":1,"b":2} → {"sum":3},
// typed and dynamic, and through the host (relay_add calls calc.add).
const adderGo = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

type In struct {
	A int64 ` + "`hotmod:\"a,id=1,required\"`" + `
	B int64 ` + "`hotmod:\"b,id=2,required\"`" + `
}

type Out struct {
	Sum int64 ` + "`hotmod:\"sum,id=1\"`" + `
}

var Module = sdk.New("adder", "1.0.0").
	Requires("calc", "^1").
	Method(sdk.Func("add", func(_ context.Context, in In) (Out, error) { return Out{Sum: in.A + in.B}, nil })).
	Handle("relay_add", func(ctx context.Context, p map[string]any) (map[string]any, error) {
		return sdk.Call(ctx, "calc", "add", p)
	}).
	Handle("add_map", func(_ context.Context, p map[string]any) (map[string]any, error) {
		a, _ := sdk.Int(p, "a")
		b, _ := sdk.Int(p, "b")
		return map[string]any{"sum": a + b}, nil
	})

func main() { sdk.Main(Module) }
`

var (
	adderOnce sync.Once
	adderPath string
)

// adder builds adderGo once per test binary.
func adder(b *testing.B) string {
	adderOnce.Do(func() {
		dir := plugintest.Source(b, adderGo)
		p, err := build.Process(context.Background(), build.Options{Dir: dir, Out: sharedDir, Name: "adder", Env: []string{"GOWORK=off"}})
		if err != nil {
			b.Fatal(err)
		}
		adderPath = p
	})
	if adderPath == "" {
		b.Fatal("the adder module did not build")
	}
	return adderPath
}

// benchCalls calls method with {"a":1,"b":2} b.N times and reports the
// median and 99th percentile of the round trips.
func benchCalls(b *testing.B, inst *Instance, method string) {
	benchCallsCtx(b, context.Background(), inst, method)
}

// benchCallsCtx is benchCalls with the calls made within ctx.
func benchCallsCtx(b *testing.B, ctx context.Context, inst *Instance, method string) {
	p := map[string]any{"a": int64(1), "b": int64(2)}
	for i := 0; i < 1000; i++ { // warm up
		inst.Invoke(ctx, method, p)
	}
	lat := make([]time.Duration, 0, b.N)
	pids := inst.PIDs()
	b.ReportAllocs()
	b.ResetTimer()
	start := costNow(pids)
	for i := 0; i < b.N; i++ {
		t := time.Now()
		out, err := inst.Invoke(ctx, method, p)
		lat = append(lat, time.Since(t))
		if err != nil || out["sum"] != int64(3) {
			b.Fatal(out, err)
		}
	}
	b.StopTimer()
	reportCost(b, start, pids)
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
	if os.Getenv("HOTMOD_BENCH_HIST") != "" {
		for _, q := range []int{10, 25, 50, 75, 80, 85, 90, 95, 99} {
			b.Logf("p%d %v", q, lat[len(lat)*q/100])
		}
	}
}

// BenchmarkCall: one caller, a typed method (the sdk decodes the params
// straight into a struct: no maps in the child).
func BenchmarkCall(b *testing.B) {
	cfg, _ := testConfig(b)
	benchCalls(b, load(b, cfg, adder(b)), "add")
}

// BenchmarkCallMap: the same through a dynamic method (maps in the child).
func BenchmarkCallMap(b *testing.B) {
	cfg, _ := testConfig(b)
	benchCalls(b, load(b, cfg, adder(b)), "add_map")
}

// BenchmarkNestedCall: a call whose method calls another module through
// the host (child → host → a Go function → child): two round trips on the
// same pipes, and the host's call on a goroutine of its own.
func BenchmarkNestedCall(b *testing.B) {
	cfg, _ := testConfig(b)
	inst := load(b, cfg, adder(b))
	calc := hostFunc(func(_ context.Context, _, _ string, p map[string]any) (map[string]any, error) {
		return map[string]any{"sum": p["a"].(int64) + p["b"].(int64)}, nil
	})
	if err := inst.Init(sdk.WithHost(context.Background(), calc), nil); err != nil {
		b.Fatal(err)
	}
	benchCalls(b, inst, "relay_add")
}

// hostFunc is an sdk.Host that is a function.
type hostFunc func(ctx context.Context, target, method string, params map[string]any) (map[string]any, error)

func (f hostFunc) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	return f(ctx, target, method, params)
}

// BenchmarkCallDeadline: the same with a context deadline (a timer, and
// the remaining time sent along).
func BenchmarkCallDeadline(b *testing.B) {
	cfg, _ := testConfig(b)
	inst := load(b, cfg, adder(b))
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	benchCallsCtx(b, ctx, inst, "add")
}

// BenchmarkParallel8: 8 callers on one child; ns/op is the inverse of the
// throughput.
func BenchmarkParallel8(b *testing.B) {
	cfg, _ := testConfig(b)
	benchParallel(b, load(b, cfg, adder(b)), 8)
}

// BenchmarkParallel8Pool2: 8 callers on a pool of two children.
func BenchmarkParallel8Pool2(b *testing.B) {
	cfg, _ := testConfig(b)
	cfg.PoolSize = 2
	benchParallel(b, load(b, cfg, adder(b)), 8)
}

func benchParallel(b *testing.B, inst *Instance, callers int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism((callers + 1) / 2) // GOMAXPROCS is 2 here
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		p := map[string]any{"a": int64(1), "b": int64(2)}
		for pb.Next() {
			if out, err := inst.Invoke(ctx, "add", p); err != nil || out["sum"] != int64(3) {
				b.Error(out, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

// BenchmarkStart: Load (hash, private copy, start, handshake) and Close of
// a Go module.
func BenchmarkStart(b *testing.B) {
	cfg, _ := testConfig(b)
	path := adder(b)
	l := NewLoader(cfg)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst, err := l.Load(context.Background(), path)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		inst.Close()
		b.StartTimer()
	}
}

// BenchmarkRestart: a child's start and handshake alone, as a restart does
// it (the private copy exists).
func BenchmarkRestart(b *testing.B) {
	cfg, _ := testConfig(b)
	l := NewLoader(cfg)
	sp, err := l.executableSpec(adder(b))
	if err != nil {
		b.Fatal(err)
	}
	if err := sp.wait(); err != nil {
		b.Fatal(err)
	}
	defer sp.release()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, _, err := startChild(context.Background(), l, sp, "adder")
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		c.kill("done")
		c.w.close()
		c.stdout.Close()
		<-c.exited
		b.StartTimer()
	}
}

// BenchmarkPython: a call to the Python example (JSON mode).
func BenchmarkPython(b *testing.B) {
	cfg, _ := testConfig(b)
	inst := load(b, cfg, filepath.Join(plugintest.Repo(b), "examples", "python", "textstats.process.json"))
	ctx := context.Background()
	p := map[string]any{"text": "to be or not to be"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := inst.Invoke(ctx, "count_words", p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPipeBaseline: what the pipes alone cost here, for comparison: a
// frame of the size of a small call's request written to a child that
// copies it back, read through Go's poller. No protocol, no encoding.
func BenchmarkPipeBaseline(b *testing.B) {
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), testChildEnv+"=echo")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	inR.Close()
	outW.Close()
	defer func() {
		inW.Close()
		cmd.Wait()
		outR.Close()
	}()
	frame := binary.BigEndian.AppendUint32(nil, 48)
	frame = append(frame, make([]byte, 48)...)
	in := bufio.NewReader(outR)
	buf := make([]byte, len(frame))
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	start := costNow([]int{cmd.Process.Pid})
	for i := 0; i < b.N; i++ {
		t := time.Now()
		inW.Write(frame)
		if _, err := io.ReadFull(in, buf); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t))
	}
	b.StopTimer()
	reportCost(b, start, []int{cmd.Process.Pid})
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}
