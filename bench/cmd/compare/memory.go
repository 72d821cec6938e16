package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"

	"github.com/hotmod/hotmod"
)

// memResult is what loading one more version of the module (or one more
// plugin client) costs.
type memResult struct {
	name, what string
	heapInuse  int64 // Δ runtime.MemStats.HeapInuse of the host, after GC
	sys        int64 // Δ runtime.MemStats.Sys of the host
	rss        int64 // Δ VmRSS of the host (/proc/self/status)
	children   int   // child processes that appeared
	childRSS   int64 // their VmRSS, summed
	err        string
}

type memSnap struct {
	heapInuse, sys, rss int64
	children            []int
}

func snapMem() memSnap {
	// A GC, and whatever it freed handed back to the OS, so that RSS is not
	// carried by garbage or by free pages the scavenger had not got to yet.
	debug.FreeOSMemory()
	debug.FreeOSMemory() // again: finalizers of the first cycle may free more
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSnap{heapInuse: int64(m.HeapInuse), sys: int64(m.Sys), rss: vmRSS("self"), children: childPIDs()}
}

// measureMem snapshots the host's memory and child processes, runs load
// (which loads one more version and makes one call to it, and returns how
// to let it go), snapshots again and releases what load loaded. Nothing is
// released before the second snapshot.
func measureMem(name, what string, load func() (release func(), err error)) memResult {
	res := memResult{name: name, what: what}
	before := snapMem()
	release, err := load()
	if err != nil {
		res.err = err.Error()
		return res
	}
	after := snapMem()
	res.heapInuse = after.heapInuse - before.heapInuse
	res.sys = after.sys - before.sys
	res.rss = after.rss - before.rss
	for _, pid := range after.children {
		if !slices.Contains(before.children, pid) {
			res.children++
			res.childRSS += vmRSS(strconv.Itoa(pid))
		}
	}
	if release != nil {
		release()
	}
	return res
}

// vmRSS returns VmRSS of /proc/<pid>/status in bytes (0 if unknown).
func vmRSS(pid string) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v) // "12345 kB"
			if len(f) == 2 && f[1] == "kB" {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// childPIDs lists the live child processes of this process: every
// /proc/<pid>/stat whose parent pid is ours (zombies excluded).
func childPIDs() []int {
	self := os.Getpid()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

func fmtBytes(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "−", -n
	}
	switch {
	case n >= 10<<20:
		return sign + strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<20:
		return sign + strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return sign + strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return sign + strconv.FormatInt(n, 10) + " B"
}

// measureAllMem measures, after the timed rounds, what one more loaded
// version costs on each path: version 1.0.2, which nothing has loaded yet,
// next to what the rows loaded (so one-time costs such as a transport's
// runtime are already paid), each with one call so that lazily started
// parts (a wasm guest instance) exist.
func measureAllMem(ctx context.Context, art artifacts, regs map[string]*hotmod.Registry, ok3 func(map[string]any, error) error, small map[string]any, extCache string) []memResult {
	var res []memResult
	res = append(res, measureMem("Go `plugin` raw", "`plugin.Open` of another plugin (a second package path) + `Lookup` + one call; it is never unloaded",
		func() (func(), error) {
			add, err := openRaw(art.raw[verExtra])
			if err != nil {
				return nil, err
			}
			return nil, ok3(add(ctx, small))
		}))
	what := map[string]string{
		"native":  "`Registry.Load` of version " + verExtra + " beside the active " + verBase + " (the probe child has exited by then) + one call; after `Unload` its code stays mapped",
		"wasm":    "`Registry.Load` of version " + verExtra + " beside the active " + verBase + " (compiled, uncached) + one call, so one guest instance; under concurrent calls the pool starts more, up to GOMAXPROCS",
		"process": "`Registry.Load` of version " + verExtra + " beside the active " + verBase + " + one call: one child (pool size 1)",
	}
	for _, t := range []string{"native", "wasm", "process"} {
		r := regs[t]
		res = append(res, measureMem("hotmod "+t, what[t], func() (func(), error) {
			if _, err := r.Load(ctx, art.hm[verExtra][t]); err != nil {
				return nil, err
			}
			release := func() { _ = r.Unload(ctx, "adder@"+verExtra) }
			if err := ok3(r.Invoke(ctx, "adder@"+verExtra, "add", small)); err != nil {
				release()
				return nil, err
			}
			return release, nil
		}))
	}
	for _, proto := range []string{"grpc", "netrpc"} {
		res = append(res, measureMem("hashicorp/go-plugin "+goPluginLabel[proto], "one more client: `NewClient` + `Client()` + `Dispense` (one child) + one call",
			func() (func(), error) {
				caller, c, err := startGoPlugin(art.goplugin, proto)
				if err != nil {
					return nil, err
				}
				if err := ok3(caller.Call("add", small)); err != nil {
					c.Kill()
					return nil, err
				}
				return c.Kill, nil
			}))
	}
	if art.extism != "" {
		res = append(res, measureMem("Extism go-sdk", "one more `CompiledPlugin` (a wazero runtime of its own with the Extism kernel and the guest, from the warm compilation cache) + one instance + one call",
			func() (func(), error) {
				e, err := newExtism(ctx, art.extism, extCache, 1)
				if err != nil {
					return nil, err
				}
				var out map[string]any
				err = e.call(ctx, "add", small, &out)
				if err = ok3(out, err); err != nil {
					e.Close(ctx)
					return nil, err
				}
				return func() { e.Close(ctx) }, nil
			}))
	}
	return res
}
