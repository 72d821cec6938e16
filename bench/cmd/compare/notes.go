package main

import (
	"io"

	"github.com/hashicorp/go-hclog"
)

func quietLogger() hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Level: hclog.Off, Output: io.Discard})
}

const notes = `## What is measured, and how to read it

- **Same process, same run.** Every row runs in the one ` + "`compare`" + ` process; rounds interleave the
  rows so that drift (other tenants of the VM, thermal, GC) spreads over all of them.
- **ns/op** is the median over rounds of (batch time / calls); **p50/p99** come from individually timed
  calls, each of which also pays two clock reads (≈ 20–50 ns), so p50 can sit a little above ns/op
  for the fastest rows.
- **allocs/op** counts the host process only (` + "`runtime.MemStats.Mallocs`" + `, process-wide, so the
  client-side goroutines of gRPC/net-rpc/process transports are included). What a child process
  allocates is not counted.
- **× direct** is ns/op divided by the direct interface call of the same payload.
- **calls/s, 8 callers**: in each round, right after the row's latency samples, 8 goroutines call the
  row back to back for the time shown under Machine; completed calls divided by the time from releasing
  them until the last one returned; median over rounds. A failed call is not counted and is shown next
  to the figure (none failed unless the cell says so). The machine has 2 cores, so 8 callers measure how
  a path behaves when oversubscribed, not how it scales. Each path runs with its defaults: hotmod's wasm
  pool has GOMAXPROCS (2) guest instances, its process transport one child (concurrent calls
  share its pipes), go-plugin one child and one connection; the Extism row takes an instance from a pool of
  GOMAXPROCS instances per call, since an Extism ` + "`Plugin`" + ` is not safe for concurrent use.
- **hotmod wasm trusted**: the wasm transport on its trusted tier (` + "`WithWasmTier(\"trusted\")`" + `): the guest is
  compiled without termination checks, so it runs without exits to Go at its loops, and a deadline does not
  stop it (the Deadline guard abandons the call instead, as for native code); calls into trusted guests run at
  most GOMAXPROCS−1 at once (1 here), since Go cannot pre-empt a running guest. Its load includes reading the
  manifest in the interruptible runtime, then the trusted compile. The other wasm rows are the default,
  interruptible tier.
- **load / start**: Go plugin = ` + "`plugin.Open`" + ` + ` + "`Lookup`" + `; hotmod = ` + "`Registry.Load`" + ` (native
  includes the build-info preflight, the probe open in a throwaway child process and the private copy;
  wasm includes compile + instantiate, shown warm and cold — the cold one uses an empty compilation
  cache; process includes start + handshake + manifest); go-plugin = ` + "`NewClient`" + ` + ` + "`Client()`" + ` +
  ` + "`Dispense`" + `; Extism = ` + "`NewCompiledPlugin`" + ` (its kernel and the guest, with a wazero compilation cache,
  warm and cold like hotmod wasm) + one ` + "`Instance`" + `. One sample each, so treat them as rough.
- **The same module everywhere**: ` + "`bench/adder`" + ` is linked into the direct call, the raw Go plugin, the
  hotmod native/wasm/process artifacts (` + "`bench/plugins/adder`" + `) and the go-plugin binary
  (` + "`bench/peers/goplugin`" + `). Typed rows call ` + "`addTyped`" + `, an ` + "`sdk.Func`" + ` with
  ` + "`struct{A,B int64}`" + ` → ` + "`struct{Sum int64}`" + `; on wasm and process it is decoded from CBOR straight
  into the struct, on native it goes through the params map.
- **The wasm peer, Extism**: ` + "`bench/peers/extism`" + ` is the same three methods written against Extism's Go
  PDK (v1.1.3), built by standard Go (` + "`GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared`" + `, exports
  marked ` + "`//go:wasmexport`" + `; no TinyGo) and run by ` + "`github.com/extism/go-sdk`" + ` v1.7.1 on wazero, with
  WASI on (the Go runtime needs it). An Extism export takes bytes and returns bytes, so the host marshals
  the params to JSON (` + "`encoding/json`" + `) and unmarshals the answer, and the guest decodes JSON: into
  ` + "`map[string]any`" + ` for ` + "`add`" + ` and ` + "`sumItems`" + ` (like hotmod's dynamic methods), into a struct for ` + "`addTyped`" + `.
  Both sides' JSON work is inside the timed call, as hotmod's CBOR work is in its rows.
- **go-plugin over gRPC** carries ` + "`structpb.Struct`" + ` (no protoc step; ints become doubles, which a
  generated message with int64 fields would avoid and would be somewhat faster); **over net/rpc** it is
  gob with ` + "`map[string]any`" + `. Both use go-plugin's defaults (a unix socket; net/rpc multiplexed
  over yamux).
- **Hot swap under load** runs once per hotmod transport after the rounds, each in a registry of its
  own. The two versions are two builds of ` + "`bench/plugins/adder`" + ` that differ only in ` + "`version.go`" + `
  (the harness writes the copy for 1.0.1 under ` + "`bench/tmp/_src`" + `); the packages they share with the host
  are identical, as native plugins require. Each swap writes the other version's bytes beside the
  artifact and renames them over it, then calls ` + "`Registry.Load`" + ` on the path: hotmod activates the new
  version (routing switches atomically), drains the old one and unloads it. **Swap latency** runs from
  calling ` + "`Load`" + ` until a call of the module's ` + "`version`" + ` method answers with the new version; since
  ` + "`Load`" + ` returns once the new version is active, it is within microseconds of the ` + "`Load`" + ` call alone
  (shown too). With 20 swaps the p99 is the second slowest (nearest rank); the max is the
  slowest. The first swap is the only load of a build the process has not loaded before: it includes the
  native preflight, probe child and ` + "`plugin.Open`" + `, and the wasm compilation of a module not yet in the
  compilation cache. Later native swaps find the build already open (a plugin can never be unloaded; the
  loader reopens nothing and re-activates it), later wasm swaps get their compiled code from the compilation cache, and every process
  swap starts a new child. The swapper competes for the two cores with 8 callers; the last column repeats
  the swap (of builds already seen) three times after the callers have stopped. **Failed calls** count every error returned
  to a caller, and every wrong sum, during the whole run, including the ` + "`version`" + ` calls. **calls/s during
  the swaps** is the callers' completed calls from the first swap until the last one answered (pauses
  included), divided by that time; "without swaps" repeats the same row's 8-caller figure from the small
  table.
- **Memory per loaded version** loads, after the rounds, a third build (1.0.2, never loaded before) next
  to what the rows loaded, so one-time costs (a transport's runtime, go-plugin's and gRPC's code) are
  already paid, and calls it once. Before and after: ` + "`debug.FreeOSMemory()`" + ` (a GC that returns free
  pages to the OS), then ` + "`runtime.MemStats.HeapInuse`" + ` (live Go heap spans) and ` + "`Sys`" + ` (all memory the
  Go runtime has taken from the OS; it rarely shrinks), and the host's ` + "`VmRSS`" + ` from
  ` + "`/proc/self/status`" + ` (resident memory, which includes mapped plugin code and wazero's compiled code,
  neither of which is Go heap). Child processes are the live processes whose parent is the host
  (` + "`/proc/*/stat`" + `), that were not there before; their ` + "`VmRSS`" + ` is summed. One sample each: RSS moves
  with what the runtime returns to the OS and with pages touched, so read it to within a few MiB.
  Direct calls load nothing and have no row.
`

// notMeasured says what the tables leave out; extErr is why the Extism
// guest did not build, if it did not.
func notMeasured(extErr string) string {
	s := "\n## Not measured\n\n"
	if extErr != "" {
		s += "- **The wasm peer (Extism go-sdk)**: its guest did not build in this run, so it has no rows: " + extErr + "\n"
	}
	return s + `- **knqyf263/go-plugin** (the other wasm peer): not attempted. It generates host and guest code
  from a ` + "`.proto`" + ` file with ` + "`protoc`" + ` and its ` + "`protoc-gen-go-plugin`" + `, and there is no ` + "`protoc`" + ` on this
  machine; Extism stands in for "a wasm plug-in framework on wazero".
- **go-plugin over gRPC with generated messages** (int64 fields instead of ` + "`structpb`" + `): not measured,
  for the same reason (no ` + "`protoc`" + `).
`
}

const caveats = `
## Caveats

- This is a **noisy 2-core VM**: the host, the child process and the Go runtime share two cores, so the
  cross-process rows (process, go-plugin) are sensitive to scheduling and can move by 20–50% between runs;
  p99 especially. Compare rows within one run, not across runs. For the process rows the batch
  ns/op (back-to-back calls) is often well above p50 (isolated calls): with both sides busy on two
  cores the child and the host's reader contend; p50 is the better "one call" figure there.
- The raw Go-plugin row calls ` + "`adder.Add`" + ` directly (no method lookup by name), so it can come out a
  little below the direct ` + "`Module.Invoke`" + ` row; differences under ~20% between the in-process rows are noise.
- Native rows (raw plugin, hotmod native) need cgo and the same toolchain and flags for host and plugin;
  ` + "`go run`" + ` builds the host without special flags, and the harness builds the plugins the same way.
`
