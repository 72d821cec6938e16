// Command compare measures one call — {"a":1,"b":2} → {"sum":3}, and a ~4 KiB
// nested payload — through a direct Go call, Go's plugin package, hotmod's
// three transports and hashicorp/go-plugin (gRPC and net/rpc), in one
// process and one run, and writes a markdown table.
//
//	cd bench && go run ./cmd/compare            # writes ../BENCHMARKS.md
//	cd bench && go run ./cmd/compare -o -       # prints it instead
package main

import (
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
	tputDur  = flag.Duration("throughput", 100*time.Millisecond, "time per row per round for the concurrent-callers throughput run")
	callers  = flag.Int("callers", 8, "concurrent callers for the throughput and hot-swap runs")
	swaps    = flag.Int("swaps", 20, "hot swaps per hotmod transport")
	swapGap  = flag.Duration("swap-gap", 50*time.Millisecond, "pause after each hot swap, while the callers go on")
	nItems   = flag.Int("items", 56, "items in the nested payload (56 ≈ 4 KiB as JSON)")
)

type row struct {
	group, name, transport, hotSwap, load string
	call                                  func() error
	batches                               []float64 // ns/op per round
	allocs                                []float64 // allocs/op per round
	samples                               []float64 // per-call ns
	tput                                  []float64 // calls/s with *callers callers, per round
	tputErrs                              int64     // errors in the throughput runs (must be 0)
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
	art := buildAll(tmp)
	// Every registry keeps its private copies and its wasm compilation
	// cache under tmp, so a run starts cold and leaves the user's cache alone.
	cacheDir := filepath.Join(tmp, "cache")

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
	ok3, okN := wantSum(3), wantSum(wantNested)

	// ---- direct ----
	var inv sdk.Invoker = adder.New(verBase)
	add("small", "direct Go interface call (`sdk.Module.Invoke`, dynamic `add`)", "in-process", "no", "—",
		func() error { return ok3(inv.Invoke(ctx, "add", small)) })
	add("small", "direct Go interface call (typed `addTyped` via map)", "in-process", "no", "—",
		func() error { return ok3(inv.Invoke(ctx, "addTyped", small)) })
	add("nested", "direct Go interface call (`sumItems`)", "in-process", "no", "—",
		func() error { return okN(inv.Invoke(ctx, "sumItems", nested)) })

	// ---- Go plugin, raw ----
	t0 := time.Now()
	rawAdd, err := openRaw(art.raw[verBase])
	check(err)
	rawLoad := since(t0)
	add("small", "Go `plugin` raw (Open + Lookup, call the func)", "native .so", "no (cannot unload; same path → cached)", rawLoad,
		func() error { return ok3(rawAdd(ctx, small)) })

	// ---- hotmod ----
	// A cold load of the wasm artifact (empty compilation cache) first, per
	// tier; the measured registry then loads it from the warm cache.
	coldWasm := map[string]string{}
	for _, v := range hotmodVariants {
		if v.transport != "wasm" {
			continue
		}
		r := hotmod.New(append([]hotmod.Option{hotmod.WithCacheDir(cacheDir), hotmod.WithLogger(quiet)}, v.opts...)...)
		t0 := time.Now()
		_, err := r.Load(ctx, art.hm[verBase]["wasm"])
		check(err)
		coldWasm[v.name] = since(t0)
		check(r.Close(ctx))
	}
	registries := map[string]*hotmod.Registry{}
	for _, v := range hotmodVariants {
		t := v.transport
		r := hotmod.New(append([]hotmod.Option{hotmod.WithCacheDir(cacheDir), hotmod.WithLogger(quiet)}, v.opts...)...)
		defer r.Close(ctx)
		registries[v.name] = r
		t0 := time.Now()
		_, err := r.Load(ctx, art.hm[verBase][t])
		check(err)
		load := since(t0)
		if t == "wasm" {
			load += " (warm cache; cold " + coldWasm[v.name] + ")"
		}
		t = v.name
		tr := "hotmod " + t
		add("small", "hotmod "+t+" — `Registry.Invoke` dynamic `add`", tr, "yes", load,
			func() error { return ok3(r.Invoke(ctx, "adder", "add", small)) })
		add("small", "hotmod "+t+" — `Registry.Invoke` typed `addTyped`", tr, "yes", load,
			func() error { return ok3(r.Invoke(ctx, "adder", "addTyped", small)) })
		add("small", "hotmod "+t+" — `hotmod.Call[Out]` typed `addTyped`", tr, "yes", load,
			func() error {
				out, err := hotmod.Call[adder.Out](ctx, r, "adder", "addTyped", adder.In{A: 1, B: 2})
				if err == nil && out.Sum != 3 {
					err = fmt.Errorf("sum %d", out.Sum)
				}
				return err
			})
		add("nested", "hotmod "+t+" — `sumItems`", tr, "yes", load,
			func() error { return okN(r.Invoke(ctx, "adder", "sumItems", nested)) })
	}

	// ---- hashicorp/go-plugin ----
	for _, proto := range []string{"grpc", "netrpc"} {
		t0 := time.Now()
		caller, c, err := startGoPlugin(art.goplugin, proto)
		check(err)
		defer c.Kill()
		load := since(t0)
		label := goPluginLabel[proto]
		add("small", "hashicorp/go-plugin "+label, "child process", "no (restart it yourself)", load,
			func() error { return ok3(caller.Call("add", small)) })
		add("nested", "hashicorp/go-plugin "+label+" — `sumItems`", "child process", "no (restart it yourself)", load,
			func() error { return okN(caller.Call("sumItems", nested)) })
	}

	// ---- Extism (wasm peer) ----
	var ext *extismPeer
	if art.extism != "" {
		extCache := filepath.Join(tmp, "extismcache")
		t0 := time.Now()
		cold, err := newExtism(ctx, art.extism, extCache, 1) // empty cache: cold
		check(err)
		coldExt := since(t0)
		cold.Close(ctx)
		t0 = time.Now()
		ext, err = newExtism(ctx, art.extism, extCache, 1)
		check(err)
		defer ext.Close(ctx)
		load := since(t0) + " (warm cache; cold " + coldExt + ")"
		for len(ext.all) < extismPoolSize() { // the rest of the pool, untimed
			check(ext.grow(ctx))
		}
		const swap = "no (build a new plugin and switch yourself)"
		add("small", "Extism go-sdk (wazero), std-Go guest — `add` JSON ↔ map", "wasm (extism)", swap, load,
			func() error {
				var out map[string]any
				err := ext.call(ctx, "add", small, &out)
				return ok3(out, err)
			})
		add("small", "Extism go-sdk (wazero), std-Go guest — `addTyped` JSON ↔ struct", "wasm (extism)", swap, load,
			func() error {
				var out extismOut
				if err := ext.call(ctx, "addTyped", extismIn{A: 1, B: 2}, &out); err != nil {
					return err
				}
				if out.Sum != 3 {
					return fmt.Errorf("sum %d", out.Sum)
				}
				return nil
			})
		add("nested", "Extism go-sdk (wazero), std-Go guest — `sumItems` JSON ↔ map", "wasm (extism)", swap, load,
			func() error {
				var out map[string]any
				err := ext.call(ctx, "sumItems", nested, &out)
				return okN(out, err)
			})
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
			perSec, errs := throughput(r.call, *callers, *tputDur)
			r.tput = append(r.tput, perSec)
			r.tputErrs += errs
		}
	}

	// ---- memory per loaded version ----
	log.Print("memory per loaded version …")
	mem := measureAllMem(ctx, art, registries, ok3, small, filepath.Join(tmp, "extismcache"))

	// ---- hot swap under load ----
	var sw []swapResult
	for _, v := range hotmodVariants {
		t := v.name
		log.Printf("hot swap under load: %s …", t)
		res := measureSwap(ctx, "hotmod "+t, filepath.Join(tmp, "swap", strings.ReplaceAll(t, " ", "-")),
			append([]hotmod.Option{hotmod.WithCacheDir(cacheDir)}, v.opts...),
			[2]string{art.hm[verBase][v.transport], art.hm[verNext][v.transport]}, [2]string{verBase, verNext},
			func(r *hotmod.Registry) error { return ok3(r.Invoke(ctx, "adder", "add", small)) })
		log.Printf("  swaps (Load → answers): %s", fmtAll(res.answer))
		for _, r := range rows {
			if r.name == "hotmod "+t+" — `Registry.Invoke` dynamic `add`" {
				res.steady = median(r.tput)
			}
		}
		sw = append(sw, res)
	}

	md := report(rows, len(nestedJSON), mem, sw, art.extErr)
	if *outPath == "-" {
		fmt.Print(md)
		return
	}
	check(os.WriteFile(*outPath, []byte(md), 0o644))
	fmt.Print(md)
	log.Printf("wrote %s", *outPath)
}

// hotmodVariants are the hotmod rows: each transport with its defaults, and
// wasm on the trusted tier (no termination checks) beside the default
// interruptible one.
var hotmodVariants = []struct {
	name, transport string
	opts            []hotmod.Option
}{
	{"native", "native", nil},
	{"wasm", "wasm", nil},
	{"wasm trusted", "wasm", []hotmod.Option{hotmod.WithWasmTier("trusted")}},
	{"process", "process", nil},
}

// wantSum checks a call's answer: no error and "sum" == want.
func wantSum(want int64) func(map[string]any, error) error {
	return func(out map[string]any, err error) error {
		if err != nil {
			return err
		}
		var got int64
		switch v := out["sum"].(type) {
		case int64:
			got = v
		case float64: // structpb and encoding/json have only doubles
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

// openRaw opens a Go plugin built from plugins/adder and returns its Add.
func openRaw(path string) (func(context.Context, map[string]any) (map[string]any, error), error) {
	p, err := plugin.Open(path)
	if err != nil {
		return nil, err
	}
	sym, err := p.Lookup("Add")
	if err != nil {
		return nil, err
	}
	return sym.(func(context.Context, map[string]any) (map[string]any, error)), nil
}

var goPluginLabel = map[string]string{"grpc": "gRPC (structpb.Struct)", "netrpc": "net/rpc (gob)"}

// startGoPlugin starts the go-plugin server binary speaking proto and
// returns the dispensed caller and the client (Kill stops the child).
func startGoPlugin(bin, proto string) (shared.Caller, *goplugin.Client, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "BENCH_PROTO="+proto)
	var plugins goplugin.PluginSet
	allowed := []goplugin.Protocol{goplugin.ProtocolNetRPC}
	if proto == "grpc" {
		plugins = goplugin.PluginSet{"adder": &shared.GRPCPlugin{}}
		allowed = []goplugin.Protocol{goplugin.ProtocolGRPC}
	} else {
		plugins = goplugin.PluginSet{"adder": &shared.NetRPCPlugin{}}
	}
	c := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig: shared.Handshake, Plugins: plugins, Cmd: cmd,
		AllowedProtocols: allowed, Stderr: io.Discard, SyncStdout: io.Discard, SyncStderr: io.Discard,
		Logger: quietLogger(),
	})
	rpcc, err := c.Client()
	if err != nil {
		c.Kill()
		return nil, nil, err
	}
	raw, err := rpcc.Dispense("adder")
	if err != nil {
		c.Kill()
		return nil, nil, err
	}
	return raw.(shared.Caller), c, nil
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

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

func since(t time.Time) string { return fmtNS(float64(time.Since(t).Nanoseconds())) }

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
