package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod"
)

// swapResult is one hotmod transport under hot swaps.
type swapResult struct {
	name         string
	calls, fails int64         // callers' calls that completed / failed (any error or a wrong sum)
	firstErr     string        // the first failure, if any
	window       time.Duration // from the first swap's start until the callers stopped
	answer       []float64     // per swap, ns: Registry.Load called → the new version answers
	load         []float64     // per swap, ns: the Registry.Load call alone
	idle         []float64     // swaps after the callers stopped, ns, as answer
	steady       float64       // calls/s of the same call without swaps (the small table)
}

// measureSwap loads versions[0] from one artifact path, then, while
// *callers goroutines call Registry.Invoke(ctx, "adder", "add", …) (the
// plain name routes to the newest active version), replaces the file at that
// path *swaps times, alternating versions[1] and versions[0], and calls
// Registry.Load on it each time (no watcher: Load is what a watcher calls
// once a file has settled, and calling it directly keeps the settle delay
// out of the latency). A swap's latency runs from calling Load until a call
// of the "version" method answers with the new version; calls of "version"
// that fail count as failed calls too. Three more swaps after the callers
// have stopped show what a swap takes without them.
func measureSwap(ctx context.Context, name, dir string, opts []hotmod.Option, files, versions [2]string, call func(*hotmod.Registry) error) swapResult {
	res := swapResult{name: name}
	var data [2][]byte
	for i, f := range files {
		b, err := os.ReadFile(f)
		check(err)
		data[i] = b
	}
	check(os.MkdirAll(dir, 0o755))
	path := filepath.Join(dir, "adder"+artifactExt(files[0]))
	publish := func(i int) { // write beside, rename into place: Load never sees half a file
		tmp := path + ".new"
		check(os.WriteFile(tmp, data[i], 0o755))
		check(os.Rename(tmp, path))
	}

	r := hotmod.New(append(opts, hotmod.WithLogger(quiet))...)
	defer r.Close(ctx)
	publish(0)
	_, err := r.Load(ctx, path)
	check(err)
	var pollFails atomic.Int64
	var errMu sync.Mutex
	failed := func(err error) {
		errMu.Lock()
		if res.firstErr == "" {
			res.firstErr = err.Error()
		}
		errMu.Unlock()
	}
	answers := func(want string) error {
		out, err := r.Invoke(ctx, "adder", "version", nil)
		if err != nil {
			pollFails.Add(1)
			failed(err)
			return err
		}
		if out["version"] != want {
			return fmt.Errorf("version %v, want %s", out["version"], want)
		}
		return nil
	}
	check(answers(versions[0]))

	counts := make([]counter, *callers)
	var stop atomic.Bool
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range counts {
		wg.Add(1)
		go func(c *counter) {
			defer wg.Done()
			<-start
			for !stop.Load() {
				if err := call(r); err != nil {
					c.errs++
					failed(err)
				} else {
					c.calls++
				}
			}
		}(&counts[i])
	}

	// swap publishes version k, loads it and waits until it answers; it
	// returns the time until it answered and the time Load took.
	swap := func(k int) (answered, load time.Duration) {
		publish(k)
		ts := time.Now()
		_, err := r.Load(ctx, path)
		load = time.Since(ts)
		if err != nil {
			log.Fatalf("hot swap %s: Load of %s: %v", name, versions[k], err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for answers(versions[k]) != nil {
			if time.Now().After(deadline) {
				log.Fatalf("hot swap %s: %s never answered", name, versions[k])
			}
		}
		return time.Since(ts), load
	}

	t0 := time.Now()
	close(start)
	for i := 1; i <= *swaps; i++ {
		answered, load := swap(i % 2)
		res.answer = append(res.answer, float64(answered.Nanoseconds()))
		res.load = append(res.load, float64(load.Nanoseconds()))
		if i < *swaps {
			time.Sleep(*swapGap)
		}
	}
	stop.Store(true)
	wg.Wait()
	res.window = time.Since(t0)

	// The same swaps with nobody calling, for comparison.
	for i := 1; i <= 3; i++ {
		answered, _ := swap((*swaps + i) % 2)
		res.idle = append(res.idle, float64(answered.Nanoseconds()))
	}
	for _, c := range counts {
		res.calls += c.calls
		res.fails += c.errs
	}
	res.fails += pollFails.Load()
	return res
}

func artifactExt(path string) string {
	if filepath.Ext(path) == ".so" || filepath.Ext(path) == ".wasm" || filepath.Ext(path) == ".process" {
		return filepath.Ext(path)
	}
	log.Fatalf("%s: not a hotmod artifact the harness knows", path)
	return ""
}

func fmtAll(ns []float64) string {
	s := make([]string, len(ns))
	for i, v := range ns {
		s[i] = fmtNS(v)
	}
	return strings.Join(s, " ")
}
