// Command precompile fills a wasm compilation cache: it compiles the .wasm
// artifacts named on its command line for the tiers asked, as
// wasm.Precompile does. The wasm package's tests run it when they run under
// the race detector, whose instrumentation makes wazero's compiler about 30
// times slower: a guest that compiles in seconds here takes a minute or two
// there, and the tests then take the compiled code from the cache.
//
//	precompile -cache DIR [-tiers interruptible,trusted] [-workers N] FILE.wasm...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/hotmod/hotmod/internal/wasm"
)

func main() {
	cache := flag.String("cache", "", "the compilation cache directory (wasm.Config.CacheDir)")
	tiers := flag.String("tiers", string(wasm.TierInterruptible), "the tiers to compile for, comma-separated")
	workers := flag.Int("workers", runtime.GOMAXPROCS(0), "wazero's compilation workers per artifact")
	flag.Parse()
	if *cache == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: precompile -cache DIR [-tiers interruptible,trusted] [-workers N] FILE.wasm...")
		os.Exit(2)
	}
	var ts []wasm.Tier
	for _, t := range strings.Split(*tiers, ",") {
		ts = append(ts, wasm.Tier(strings.TrimSpace(t)))
	}
	if err := wasm.CheckTiers(strings.Split(*tiers, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(2)
	}
	cfg := wasm.Config{CacheDir: *cache, CacheLimit: -1}
	if err := wasm.Precompile(context.Background(), cfg, ts, *workers, flag.Args()...); err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
}
