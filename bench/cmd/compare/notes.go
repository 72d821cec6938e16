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
- **load / start**: Go plugin = ` + "`plugin.Open`" + ` + ` + "`Lookup`" + `; hotmod = ` + "`Registry.Load`" + ` (native
  includes the build-info preflight, the probe open in a throwaway child process and the private copy;
  wasm includes compile + instantiate, shown warm and cold — the cold one uses an empty compilation
  cache; process includes start + handshake + manifest); go-plugin = ` + "`NewClient`" + ` + ` + "`Client()`" + ` +
  ` + "`Dispense`" + `. One sample each, so treat them as rough.
- **The same module everywhere**: ` + "`bench/adder`" + ` is linked into the direct call, the raw Go plugin, the
  hotmod native/wasm/process artifacts (` + "`bench/plugins/adder`" + `) and the go-plugin binary
  (` + "`bench/peers/goplugin`" + `). Typed rows call ` + "`addTyped`" + `, an ` + "`sdk.Func`" + ` with
  ` + "`struct{A,B int64}`" + ` → ` + "`struct{Sum int64}`" + `; on wasm and process it is decoded from CBOR straight
  into the struct, on native it goes through the params map.
- **go-plugin over gRPC** carries ` + "`structpb.Struct`" + ` (no protoc step; ints become doubles, which a
  generated message with int64 fields would avoid and would be somewhat faster); **over net/rpc** it is
  gob with ` + "`map[string]any`" + `. Both use go-plugin's defaults (a unix socket; net/rpc multiplexed
  over yamux).
- **Hot swap**: only hotmod rows have it (load a new version, route atomically, drain the old one).
  Go's ` + "`plugin`" + ` cannot unload and caches by path; go-plugin leaves restarts and versioning to you.

## Not measured

- **A wasm peer (extism go-sdk, knqyf263/go-plugin)**: not measured. Both need a guest built with their
  own PDK/toolchain (extism's Go PDK, or knqyf263/go-plugin's protoc plugin and generated code, with
  TinyGo or Go ≥ 1.24 wasip1), which did not fit the time box for this harness. hotmod's wasm rows run
  on wazero, which is also what both of those run on.

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
