//go:build unix

package wasm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"

	"github.com/hotmod/hotmod/internal/wasm"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// codecGuest is what BenchmarkCodec calls: the small call typed and
// dynamic, and the 56-item nested payload into maps and into structs.
const codecGuest = `package main

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

type AB struct {
	A int64 ` + "`hotmod:\"a,id=1,required\"`" + `
	B int64 ` + "`hotmod:\"b,id=2,required\"`" + `
}

type Sum struct {
	Sum int64 ` + "`hotmod:\"sum,id=1\"`" + `
}

type Item struct {
	A     int64    ` + "`hotmod:\"a,id=1\"`" + `
	B     int64    ` + "`hotmod:\"b,id=2\"`" + `
	Name  string   ` + "`hotmod:\"name,id=3\"`" + `
	Price float64  ` + "`hotmod:\"price,id=4\"`" + `
	Tags  []string ` + "`hotmod:\"tags,id=5\"`" + `
}

type Items struct {
	Items    []Item ` + "`hotmod:\"items,id=1\"`" + `
	Currency string ` + "`hotmod:\"currency,id=2\"`" + `
}

type Total struct {
	Sum int64 ` + "`hotmod:\"sum,id=1\"`" + `
	N   int64 ` + "`hotmod:\"n,id=2\"`" + `
}

var Module = sdk.New("codecbench", "1.0.0").
	Method(sdk.Func("add", func(_ context.Context, in AB) (Sum, error) { return Sum{in.A + in.B}, nil })).
	Handle("add_dynamic", func(_ context.Context, p map[string]any) (map[string]any, error) {
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
	Handle("sumItems", func(_ context.Context, p map[string]any) (map[string]any, error) {
		items, _ := p["items"].([]any)
		var sum int64
		for _, it := range items {
			m, _ := it.(map[string]any)
			a, err := sdk.Int(m, "a")
			if err != nil {
				return nil, err
			}
			b, err := sdk.Int(m, "b")
			if err != nil {
				return nil, err
			}
			sum += a + b
		}
		return map[string]any{"sum": sum, "n": int64(len(items))}, nil
	}).
	Method(sdk.Func("sumItemsTyped", func(_ context.Context, in Items) (Total, error) {
		var t Total
		for _, it := range in.Items {
			t.Sum += it.A + it.B
		}
		t.N = int64(len(in.Items))
		return t, nil
	}))

func main() { sdk.Main(Module) }
`

// nestedParams is the 56-item nested payload of the comparison harness
// (bench/adder.Nested).
func nestedParams(n int) map[string]any {
	items := make([]any, n)
	for i := range items {
		items[i] = map[string]any{"a": int64(i), "b": int64(2 * i), "name": "item-name-0000", "price": 12.5, "tags": []any{"x", "y"}}
	}
	return map[string]any{"items": items, "currency": "EUR"}
}

// BenchmarkCodec calls codecGuest's methods through the wasm transport
// (Instance.Invoke: maps in and out, as the registry calls) on both wazero
// settings: interruptible (WithCloseOnContextDone, every loop header the
// guest runs may exit to the host) and trusted (off).
//
// With HOTMOD_BASELINE_SDK set to the sdk directory of another tree (say
// the main branch's), the same guest is also built against that SDK, and
// each sub-benchmark alternates batches of the two builds in rounds: its
// log shows the median ns/op of each over the rounds and the median of the
// per-round ratios, and it reports them as metrics (new-ns/op,
// baseline-ns/op, ratio). Run it with -benchtime 1x: the rounds are inside.
func BenchmarkCodec(b *testing.B) {
	ctx := context.Background()
	type variant struct {
		name string
		path string
	}
	variants := []variant{{"new", source(b, "codecbench", codecGuest)}}
	if dir := os.Getenv("HOTMOD_BASELINE_SDK"); dir != "" {
		variants = append(variants, variant{"baseline", artifact(b, "codecbench-baseline", func() string {
			return baselineSource(b, dir)
		})})
	}
	calls := []struct {
		name, method string
		params       map[string]any
		check        func(map[string]any) bool
	}{
		{"typed", "add", map[string]any{"a": int64(1), "b": int64(2)}, func(m map[string]any) bool { return m["sum"] == int64(3) }},
		{"dynamic", "add_dynamic", map[string]any{"a": int64(1), "b": int64(2)}, func(m map[string]any) bool { return m["sum"] == int64(3) }},
		{"nested", "sumItems", nestedParams(56), func(m map[string]any) bool { return m["n"] == int64(56) }},
		{"nested-typed", "sumItemsTyped", nestedParams(56), func(m map[string]any) bool { return m["n"] == int64(56) }},
	}
	if raw, _ := cbor.Marshal(nestedParams(56)); len(raw) == 0 {
		b.Fatal("the nested payload does not encode")
	}
	for _, on := range []bool{true, false} {
		tier := "interruptible"
		if !on {
			tier = "trusted"
		}
		restore := wasm.SetInterruptible(on)
		l, _ := newLoader(b, wasm.Config{PoolSize: 1})
		restore()
		insts := make([]*wasm.Instance, len(variants))
		for i, v := range variants {
			insts[i] = load(b, l, v.path)
		}
		for _, c := range calls {
			b.Run(c.name+"/"+tier, func(b *testing.B) {
				// batch returns wall and process CPU time (all threads) per
				// call; CPU time minds other tenants of the machine less.
				batch := func(i *wasm.Instance, d time.Duration) (wall, cpu float64) {
					cpu0 := cpuTime()
					start, n := time.Now(), 0
					for time.Since(start) < d {
						out, err := i.Invoke(ctx, c.method, c.params)
						if err != nil || !c.check(out) {
							b.Fatal(out, err)
						}
						n++
					}
					return float64(time.Since(start).Nanoseconds()) / float64(n), float64(cpuTime()-cpu0) / float64(n)
				}
				for _, i := range insts { // warm up
					batch(i, 20*time.Millisecond)
				}
				const rounds = 9
				per, perCPU := make([][]float64, len(insts)), make([][]float64, len(insts))
				var ratios, cpuRatios []float64
				for r := 0; r < rounds; r++ {
					ns, cpu := make([]float64, len(insts)), make([]float64, len(insts))
					for k := range insts {
						j := k
						if r%2 == 1 { // alternate the order
							j = len(insts) - 1 - k
						}
						ns[j], cpu[j] = batch(insts[j], 100*time.Millisecond)
						per[j], perCPU[j] = append(per[j], ns[j]), append(perCPU[j], cpu[j])
					}
					if len(insts) > 1 {
						ratios, cpuRatios = append(ratios, ns[0]/ns[1]), append(cpuRatios, cpu[0]/cpu[1])
					}
				}
				var line []string
				for k, v := range variants {
					m, mc := medianOf(per[k]), medianOf(perCPU[k])
					line = append(line, fmt.Sprintf("%s %s (CPU %s)", v.name, nsString(m), nsString(mc)))
					b.ReportMetric(m, v.name+"-ns/op")
				}
				if len(ratios) > 0 {
					line = append(line, fmt.Sprintf("ratio new/baseline %.3f (CPU %.3f)", medianOf(ratios), medianOf(cpuRatios)))
					b.ReportMetric(medianOf(ratios), "ratio")
				}
				b.Logf("%s/%s: %s (medians of %d interleaved rounds)", c.name, tier, strings.Join(line, ", "), rounds)
			})
		}
	}
}

// BenchmarkCodecCalls counts the guest's function calls per call of each
// of codecGuest's methods (and of the baseline's, with
// HOTMOD_BASELINE_SDK), with wazero's experimental function listener, and
// logs the functions called most. On the interruptible setting nearly every
// guest function call runs one loop header, and each loop header may exit
// to the host (≈40 ns): this count is a floor for those exits (loop
// iterations inside functions add to it). Run it with -benchtime 1x.
func BenchmarkCodecCalls(b *testing.B) {
	variants := map[string]string{"new": source(b, "codecbench", codecGuest)}
	if dir := os.Getenv("HOTMOD_BASELINE_SDK"); dir != "" {
		variants["baseline"] = artifact(b, "codecbench-baseline", func() string { return baselineSource(b, dir) })
	}
	calls := []struct {
		name, method string
		params       map[string]any
	}{
		{"typed", "add", map[string]any{"a": int64(1), "b": int64(2)}},
		{"dynamic", "add_dynamic", map[string]any{"a": int64(1), "b": int64(2)}},
		{"nested", "sumItems", nestedParams(56)},
		{"nested-typed", "sumItemsTyped", nestedParams(56)},
	}
	for _, name := range []string{"new", "baseline"} {
		path, ok := variants[name]
		if !ok {
			continue
		}
		counter := &callCounter{byFunc: map[string]int{}}
		ctx := experimental.WithFunctionListenerFactory(context.Background(), counter)
		// Code compiled with listeners has a cache key of its own; a
		// directory of its own keeps it apart all the same.
		l, _ := newLoader(b, wasm.Config{PoolSize: 1, CacheDir: b.TempDir()})
		inst, err := l.Load(ctx, path)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { inst.Close() })
		for _, c := range calls {
			b.Run(c.name+"/"+name, func(b *testing.B) {
				const n = 20
				if _, err := inst.Invoke(ctx, c.method, c.params); err != nil { // first-call work out of the count
					b.Fatal(err)
				}
				counter.reset()
				for range n {
					if _, err := inst.Invoke(ctx, c.method, c.params); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(counter.total)/n, "guest-calls/op")
				b.Logf("%s %s: %.0f guest function calls per call; most called: %s", name, c.name,
					float64(counter.total)/n, counter.top(12, n))
			})
		}
	}
}

// callCounter counts the calls of each guest function.
type callCounter struct {
	total  int
	byFunc map[string]int
}

func (c *callCounter) reset() { c.total, c.byFunc = 0, map[string]int{} }

func (c *callCounter) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	return experimental.FunctionListenerFunc(func(_ context.Context, _ api.Module, def api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
		c.total++
		c.byFunc[def.DebugName()]++
	})
}

func (c *callCounter) top(k, n int) string {
	type fc struct {
		name  string
		calls int
	}
	var all []fc
	for name, calls := range c.byFunc {
		all = append(all, fc{name, calls})
	}
	slices.SortFunc(all, func(a, b fc) int { return b.calls - a.calls })
	var parts []string
	for _, f := range all[:min(k, len(all))] {
		parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimPrefix(f.name, ".."), float64(f.calls)/float64(n)))
	}
	return strings.Join(parts, ", ")
}

// baselineSource writes codecGuest into a module that uses the SDK in
// sdkDir.
func baselineSource(t testing.TB, sdkDir string) string {
	dir := filepath.Join(t.TempDir(), "codecbench-baseline")
	abs, err := filepath.Abs(sdkDir)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "main.go"), []byte(codecGuest), 0o644)
	}
	if err == nil {
		err = os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hotmodtest.example/baseline\n\ngo 1.22\n\n"+
			"require "+sdkModulePath+" v0.0.0\n\nreplace "+sdkModulePath+" => "+abs+"\n"), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// sdkModulePath is the SDK's module path.
const sdkModulePath = "github.com/hotmod/hotmod/sdk"

// cpuTime is the process's CPU time (user and system, all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func medianOf(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func nsString(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.3f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
