// Package native loads native hotmod modules: Go plugins (.so files built
// with -buildmode=plugin) that export `var Module = sdk.New(…)…`.
//
// A Go plugin is not a sandbox. It only works with a host built by the same
// toolchain, with the same flags, from identical sources for every package the
// two share; a mismatch may be an error from plugin.Open, or it may kill the
// host ("fatal error: runtime: no plugin module data", SIGSEGV, SIGBUS on a
// truncated file). A plugin can never be unloaded, and a failed plugin.Open
// leaves the process worse off for later opens. So the Loader never opens an
// unknown file in the host first. Load runs these steps, and any failure is an
// *sdk.Error with code incompatible that says what differs and what to do:
//
//  1. Read the artifact and hash it (sha256). The same bytes loaded again
//     return the module already open: plugins cannot be opened twice.
//  2. Preflight: compare the artifact's Go build info (debug/buildinfo) with
//     the host's (debug.ReadBuildInfo): the exact Go version, -buildmode=plugin,
//     cgo on both sides, the settings that change compiled code (-race, -msan,
//     -asan, -trimpath, -gcflags, -asmflags, -compiler, GOOS, GOARCH, GOAMD64
//     and the other GO* settings) and the versions of modules both link. No
//     code of the artifact runs in this step. A file that is not a Go binary
//     ends here too.
//  3. Copy the bytes to <dir>/<sha256>.so (temporary name, then rename; mode
//     0500). The private, content-addressed copy means that overwriting or
//     deleting the original never touches a loaded file, and that the plugin
//     path the runtime caches by is ours.
//  4. Probe in a throwaway child: re-execute the host binary (/proc/self/exe)
//     with HOTMOD_NATIVE_PROBE=1. The package's init function sees the
//     variable before the host's main or TestMain runs, reads the request on
//     stdin, opens every plugin this process has already opened (in order),
//     then the candidate, looks up Module, checks its type, calls Validate and
//     writes the manifest as JSON on file descriptor 3. A crash or a refusal
//     kills only the child; the parent turns the child's report, or the first
//     meaningful lines of its stderr, into the error. The probe is bounded by
//     the context and by ProbeTimeout. A Gate that is also a Prover may
//     vouch for the bytes (this executable ran them before, see the crash
//     journal's proofs): then this step is skipped.
//  5. Only a candidate that passed is opened in the host: plugin.Open on the
//     private copy, Lookup("Module"), the same type check and Validate. The
//     private path joins the process-wide list of opened plugins that later
//     probes replay.
//
// Loads are serialized process-wide. Calls into a loaded module recover a
// panic on the calling goroutine and return it as an error with code panic;
// a panic in a goroutine the module started still kills the host, which no
// loader can prevent.
//
// The probe child is the host binary itself, so packages whose init runs
// before this package's (those it does not depend on, ordered earlier) also
// run in the child. Keep heavy work out of init functions in hosts.
package native
