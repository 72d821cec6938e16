// Command compare measures one call — {"a":1,"b":2} → {"sum":3}, and a ~4 KiB
// nested payload — through a direct Go call, Go's plugin package, hotmod's
// three transports and hashicorp/go-plugin (gRPC and net/rpc), in one
// process and one run, and writes a markdown table.
//
//	cd bench && go run ./cmd/compare            # writes ../BENCHMARKS.md
//	cd bench && go run ./cmd/compare -o -       # prints it instead
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"plugin"
	"runtime"
	"slices"
	"strings"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/bench/adder"
	"github.com/hotmod/hotmod/bench/shared"
	"github.com/hotmod/hotmod/sdk"
)

var (
	outPath  = flag.String("o", "../BENCHMARKS.md", `where to write the markdown ("-" = stdout)`)
	rounds   = flag.Int("rounds", 7, "rounds; each round runs every row once (rows interleaved)")
	batchDur = flag.Duration("batch", 150*time.Millisecond, "time per row per round for the ns/op batch")
	sampDur  = flag.Duration("samples", 60*time.Millisecond, "time per row per round for per-call latency samples")
	nItems   = flag.Int("items", 56, "items in the nested payload (56 ≈ 4 KiB as JSON)")
)

type row struct {
	group, name, transport, hotSwap, load string
	call                                  func() error
	batches                               []float64 // ns/op per round
	allocs                                []float64 // allocs/op per round
	samples                               []float64 // per-call ns
}

func main() {
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("compare: ")
	ctx := context.Background()

	tmp, err := filepath.Abs("tmp")
	check(err)
	check(os.RemoveAll(tmp))
	check(os.MkdirAll(tmp, 0o755))

	// ---- build every artifact ----
	log.Print("building the hotmod CLI and the artifacts …")
	run("..", "go", "build", "-o", filepath.Join(tmp, "hotmod"), "./cmd/hotmod")
	hm := filepath.Join(tmp, "hotmod")
	for _, t := range []string{"native", "wasm", "process"} {
		run(".", hm, "build", "--transport", t, "-o", filepath.Join(tmp, t), "./plugins/adder")
	}
	run(".", "go", "build", "-buildmode=plugin", "-o", filepath.Join(tmp, "raw", "adder_raw.so"), "./plugins/adder")
	run(".", "go", "build", "-o", filepath.Join(tmp, "goplugin"), "./peers/goplugin")
	artifact := func(dir string) string {
		m, _ := filepath.Glob(filepath.Join(tmp, dir, "*"))
		if len(m) != 1 {
			log.Fatalf("want one artifact in %s, got %v", dir, m)
		}
		return m[0]
	}

	small := map[string]any{"a": int64(1), "b": int64(2)}
	nested := adder.Nested(*nItems)
	nestedJSON, _ := json.Marshal(nested)
	wantNested := int64(0)
	for i := range *nItems {
		wantNested += int64(3 * i)
	}

	var rows []*row
	add := func(group, name, transport, hotSwap, load string, call func() error) {
		rows = append(rows, &row{group: group, name: name, transport: transport, hotSwap: hotSwap, load: load, call: call})
	}
	wantSum := func(want int64) func(map[string]any, error) error {
		return func(out map[string]any, err error) error {
			if err != nil {
				return err
			}
			var got int64
			switch v := out["sum"].(type) {
			case int64:
				got = v
			case float64: // structpb has only doubles
				got = int64(v)
			default:
				return fmt.Errorf("sum: got %T %v", out["sum"], out["sum"])
			}
			if got != want {
				return fmt.Errorf("sum: got %d, want %d", got, want)
			}
			return nil
		}
	}
	ok3, okN := wantSum(3), wantSum(wantNested)

	// ---- direct ----
	var inv sdk.Invoker = adder.Module
	add("small", "direct Go interface call (`sdk.Module.Invoke`, dynamic `add`)", "in-process", "no", "—",
		func() error { return ok3(inv.Invoke(ctx, "add", small)) })
	add("small", "direct Go interface call (typed `addTyped` via map)", "in-process", "no", "—",
		func() error { return ok3(inv.Invoke(ctx, "addTyped", small)) })
	add("nested", "direct Go interface call (`sumItems`)", "in-process", "no", "—",
		func() error { return okN(inv.Invoke(ctx, "sumItems", nested)) })

	// ---- Go plugin, raw ----
	t0 := time.Now()
	p, err := plugin.Open(artifact("raw"))
	check(err)
	sym, err := p.Lookup("Add")
	check(err)
	rawAdd := sym.(func(context.Context, map[string]any) (map[string]any, error))
	rawLoad := since(t0)
	add("small", "Go `plugin` raw (Open + Lookup, call the func)", "native .so", "no (cannot unload; same path → cached)", rawLoad,
		func() error { return ok3(rawAdd(ctx, small)) })

	// ---- hotmod ----
	type hmRow struct {
		name, dir, swap string
		opts            []hotmod.Option
	}
	wasmCache := filepath.Join(tmp, "wasmcache")
	// A cold load of the wasm artifact (empty compilation cache) first; the
	// measured registry then loads it from the warm cache.
	{
		r := hotmod.New(hotmod.WithCacheDir(wasmCache), hotmod.WithLogger(quiet))
		t0 := time.Now()
		_, err := r.Load(ctx, artifact("wasm"))
		check(err)
		coldWasm = since(t0)
		check(r.Close(ctx))
	}
	for _, h := range []hmRow{
		{"native", "native", "yes", nil},
		{"wasm", "wasm", "yes", []hotmod.Option{hotmod.WithCacheDir(wasmCache)}},
		{"process", "process", "yes", nil},
	} {
		r := hotmod.New(append(h.opts, hotmod.WithLogger(quiet))...)
		defer r.Close(ctx)
		t0 := time.Now()
		_, err := r.Load(ctx, artifact(h.dir))
		check(err)
		load := since(t0)
		if h.name == "wasm" {
			load += " (warm cache; cold " + coldWasm + ")"
		}
		tr := "hotmod " + h.name
		add("small", "hotmod "+h.name+" — `Registry.Invoke` dynamic `add`", tr, h.swap, load,
			func() error { return ok3(r.Invoke(ctx, "adder", "add", small)) })
		add("small", "hotmod "+h.name+" — `Registry.Invoke` typed `addTyped`", tr, h.swap, load,
			func() error { return ok3(r.Invoke(ctx, "adder", "addTyped", small)) })
		add("small", "hotmod "+h.name+" — `hotmod.Call[Out]` typed `addTyped`", tr, h.swap, load,
			func() error {
				out, err := hotmod.Call[adder.Out](ctx, r, "adder", "addTyped", adder.In{A: 1, B: 2})
				if err == nil && out.Sum != 3 {
					err = fmt.Errorf("sum %d", out.Sum)
				}
				return err
			})
		add("nested", "hotmod "+h.name+" — `sumItems`", tr, h.swap, load,
			func() error { return okN(r.Invoke(ctx, "adder", "sumItems", nested)) })
	}

	// ---- hashicorp/go-plugin ----
	for _, proto := range []string{"grpc", "netrpc"} {
		cmd := exec.Command(filepath.Join(tmp, "goplugin"))
		cmd.Env = append(os.Environ(), "BENCH_PROTO="+proto)
		var plugins goplugin.PluginSet
		allowed := []goplugin.Protocol{goplugin.ProtocolNetRPC}
		if proto == "grpc" {
			plugins = goplugin.PluginSet{"adder": &shared.GRPCPlugin{}}
			allowed = []goplugin.Protocol{goplugin.ProtocolGRPC}
		} else {
			plugins = goplugin.PluginSet{"adder": &shared.NetRPCPlugin{}}
		}
		t0 := time.Now()
		c := goplugin.NewClient(&goplugin.ClientConfig{
			HandshakeConfig: shared.Handshake, Plugins: plugins, Cmd: cmd,
			AllowedProtocols: allowed, Stderr: io.Discard, SyncStdout: io.Discard, SyncStderr: io.Discard,
			Logger: quietLogger(),
		})
		defer c.Kill()
		rpcc, err := c.Client()
		check(err)
		raw, err := rpcc.Dispense("adder")
		check(err)
		caller := raw.(shared.Caller)
		load := since(t0)
		label := map[string]string{"grpc": "gRPC (structpb.Struct)", "netrpc": "net/rpc (gob)"}[proto]
		add("small", "hashicorp/go-plugin "+label, "child process", "no (restart it yourself)", load,
			func() error { return ok3(caller.Call("add", small)) })
		add("nested", "hashicorp/go-plugin "+label+" — `sumItems`", "child process", "no (restart it yourself)", load,
			func() error { return okN(caller.Call("sumItems", nested)) })
	}

	// ---- check every row once, then measure ----
	for _, r := range rows {
		if err := r.call(); err != nil {
			log.Fatalf("%s: %v", r.name, err)
		}
	}
	log.Printf("warming up %d rows …", len(rows))
	for _, r := range rows {
		loop(r.call, 50*time.Millisecond)
	}
	for i := range *rounds {
		log.Printf("round %d/%d", i+1, *rounds)
		for _, r := range rows {
			nsop, allocs := batch(r.call, *batchDur)
			r.batches = append(r.batches, nsop)
			r.allocs = append(r.allocs, allocs)
			r.samples = append(r.samples, sample(r.call, *sampDur)...)
		}
	}

	md := report(rows, len(nestedJSON))
	if *outPath == "-" {
		fmt.Print(md)
		return
	}
	check(os.WriteFile(*outPath, []byte(md), 0o644))
	fmt.Print(md)
	log.Printf("wrote %s", *outPath)
}

var (
	coldWasm string
	quiet    = slog.New(slog.NewTextHandler(io.Discard, nil))
)

// loop calls f for about d.
func loop(f func() error, d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for range 16 {
			_ = f()
		}
	}
}

// batch calls f repeatedly for about d and returns ns/op and allocs/op
// (allocations of this process only: a child's are not counted).
func batch(f func() error, d time.Duration) (nsop, allocs float64) {
	// size the batch from one short probe so the timed loop has no clock reads
	n, t0 := 0, time.Now()
	for time.Since(t0) < d/10 {
		_ = f()
		n++
	}
	n *= 10
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	start := time.Now()
	for range n {
		_ = f()
	}
	el := time.Since(start)
	runtime.ReadMemStats(&m1)
	return float64(el.Nanoseconds()) / float64(n), float64(m1.Mallocs-m0.Mallocs) / float64(n)
}

// sample times calls one by one for about d (each includes ~2 clock reads).
func sample(f func() error, d time.Duration) []float64 {
	var s []float64
	end := time.Now().Add(d)
	for {
		t0 := time.Now()
		_ = f()
		t1 := time.Now()
		s = append(s, float64(t1.Sub(t0).Nanoseconds()))
		if t1.After(end) {
			return s
		}
	}
}

func pct(s []float64, p float64) float64 {
	s = slices.Clone(s)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func fmtNS(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e4:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns >= 1e3:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

func report(rows []*row, nestedBytes int) string {
	var b bytes.Buffer
	w := func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }
	w("# Benchmarks: hotmod against the peers\n\n")
	w("Generated by `cd bench && go run ./cmd/compare` on %s. Do not edit by hand; rerun it.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	w("## Machine\n\n")
	w("| | |\n|---|---|\n")
	w("| CPU | %s |\n| cores (nproc) | %d |\n| Go | %s %s/%s |\n", cpuModel(), runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	w("| method | %d rounds; in each round every row runs once, interleaved (a timed batch of ≈ %v for ns/op and allocs/op, then ≈ %v of individually timed calls for p50/p99); the table shows medians over rounds |\n\n",
		*rounds, *batchDur, *sampDur)

	for _, g := range []struct{ id, title string }{
		{"small", "Small call: `{\"a\":1,\"b\":2}` → `{\"sum\":3}`"},
		{"nested", fmt.Sprintf("Nested payload: `sumItems` over %d items (%d bytes as JSON) → `{\"sum\":…,\"n\":…}`", *nItems, nestedBytes)},
	} {
		var base float64
		for _, r := range rows {
			if r.group == g.id && strings.HasPrefix(r.name, "direct") {
				base = median(r.batches)
				break
			}
		}
		w("## %s\n\n", g.title)
		w("| path | ns/op (median of rounds) | p50 | p99 | allocs/op (host) | × direct | load / start | hot swap |\n")
		w("|---|---:|---:|---:|---:|---:|---|---|\n")
		for _, r := range rows {
			if r.group != g.id {
				continue
			}
			m := median(r.batches)
			w("| %s | %s | %s | %s | %.0f | %s | %s | %s |\n", r.name, fmtNS(m), fmtNS(pct(r.samples, 0.50)), fmtNS(pct(r.samples, 0.99)),
				median(r.allocs), ratio(m, base), r.load, r.hotSwap)
		}
		w("\n")
	}
	w("%s", notes)
	return b.String()
}

func ratio(m, base float64) string {
	if base == 0 {
		return "—"
	}
	x := m / base
	if x < 10 {
		return fmt.Sprintf("%.2f×", x)
	}
	return fmt.Sprintf("%.0f×", x)
}

func median(s []float64) float64 { return pct(s, 0.5) }

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func since(t time.Time) string { return fmtNS(float64(time.Since(t).Nanoseconds())) }

func run(dir, name string, args ...string) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		log.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
