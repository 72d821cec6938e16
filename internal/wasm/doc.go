// Package wasm loads hotmod modules built as WebAssembly (GOOS=wasip1
// GOARCH=wasm -buildmode=c-shared) and runs them in wazero, without cgo.
//
// A wasm module is sandboxed, unloadable and independent of the host's Go
// version: guests built by Go 1.24, 1.25 and 1.26 run in the same host.
// The author writes the same source as for any transport; the SDK's guest
// side (sdk/wasm_guest.go) exports the functions of the ABI that
// docs/wasm-abi.md specifies, and params, results and errors cross as CBOR.
//
// One Loader holds a wazero runtime per isolation tier it may give (see
// Tier): interruptible always, trusted when Config.Tiers gives it to some
// module, each with its compilation cache in a directory of its own under
// Config.CacheDir, bounded together by Config.CacheLimit (cachebound.go).
// Load runs these steps, and any refusal is an *sdk.Error with code
// incompatible that says why:
//
//  1. Read the artifact, check the wasm header, hash it (sha256).
//  2. Compile it, or take its compiled code from the on-disk compilation
//     cache (Config.CacheDir; keyed by the bytes and wazero's version).
//     Compiling takes no lock that calls into loaded versions need, so the
//     version being replaced keeps serving meanwhile.
//  3. Check its shape: a c-shared build (_initialize), hotmod_abi, only
//     WASI preview 1 imports and the host module's functions (call.go).
//  4. Start one guest in the sandbox (no files, no environment, no time
//     of day; see sandbox in grants.go) and ask its ABI version; refuse an unknown major. Check the
//     other exports, ask how it was built (Go and SDK versions) and read
//     its manifest, which is checked as strictly as sdk.ParseManifest does.
//  5. Decide the capabilities the manifest asks for (Needs) against
//     Config.Grants; refuse what is not granted, saying how to grant it.
//     A module that asks for nothing keeps the first guest; one that asks
//     starts its serving guests with what was granted.
//  6. A module on the trusted tier is compiled again in the trusted runtime
//     (steps 1–4 ran in the interruptible one, where a guest whose
//     initialisation loops is stopped) and its serving guests start there.
//  7. Touch the version's cache entries and trim the cache to its limit.
//
// Calls then take a guest from the version's pool (Config.PoolSize guests
// at most, started on demand; a call waits for a free one within its
// deadline), write the method name and CBOR params into the guest's
// request buffer, call hotmod_call, and decode the reply. On the
// interruptible tier a call's context interrupts a running guest (wazero's
// WithCloseOnContextDone): a timed-out call returns code timeout and its
// guest is thrown away. On the trusted tier nothing interrupts a guest: the
// caller that must not wait abandons the call (the registry's Deadline
// guard), and at most Config.TrustedCalls such calls run at once. On both
// tiers a guest that trapped, exited (Go's runtime exits on a fatal error,
// such as running out of memory at Config.MemoryLimitPages) or panicked
// (code panic; the guest's stack goes to the log) is thrown away, and the
// host is not affected.
//
// A guest calls other modules (sdk.Call) through the host module "hotmod"
// (call.go): the call goes to the sdk.Host that the context of
// Instance.Init carried, with the context of the call the guest is serving,
// so the outer call's deadline and call chain carry on. A nested call
// (one inside a chain of module-to-module calls) never waits for a guest
// that a call holds: with every guest busy and the pool full it fails at
// once with overloaded, since the guest it would wait for may be held by its
// own chain.
//
// What a guest writes on stdout and stderr goes to Config.Logger, one record
// per line, with the module's name and version.
package wasm
