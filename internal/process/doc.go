// Package process loads hotmod modules that run in child processes: an
// executable built with the sdk (NAME.process), or any program that speaks
// the process protocol, started as a launch file says (NAME.process.json).
// The protocol is written down in docs/process-protocol.md.
//
// A child that crashes, hangs or misbehaves takes down only itself:
//
//  1. Load starts Config.PoolSize children and returns once each has
//     answered its handshake with the module's manifest. An executable is
//     first copied to a private file (on Linux unlinked at once and started
//     through a file descriptor), so that restarts start the bytes that were
//     loaded. Every refusal is an *sdk.Error with code incompatible and the
//     reason, with the telling lines of the child's stderr.
//  2. Invoke sends a call with an id on the child's stdin; many calls share
//     one child. A call's context bounds it: when the context ends, the call
//     fails with code timeout and is cancelled in the child; a child that is
//     still running it a grace period later is killed and replaced.
//  3. A child that dies, breaks the protocol or stops answering heartbeats
//     fails its calls in flight with code panic and is restarted with
//     exponential backoff, replaying Init and Check. After MaxCrashes within
//     CrashWindow the version fails: Config.OnFailed is called.
//  4. Close sends the close request (the module's OnClose runs), closes the
//     child's stdin and kills its process group if it has not exited within
//     the grace period. No child outlives its host: each runs in a process
//     group of its own, exits when its stdin ends, and on Linux is killed by
//     the kernel when the host dies (Pdeathsig).
//
// A module's methods may call other modules (sdk.Call; protocol version 2):
// the child sends the call tagged with the request it runs for, and the host
// makes it through the sdk.Host that Instance.Init's context carried (the
// registry's handle), within that request's context, on a goroutine of its
// own, and sends the reply back (nested.go). Config.MaxNestedCalls bounds
// such calls in flight per child.
//
// The children's stderr goes to Config.Logger, line by line, with the
// module's name.
//
// # The cost of a call
//
// About 10 µs for a small call (see BenchmarkCall): two pipe writes and
// reads, and two processes woken. Each side avoids a goroutine switch on the
// way: in the child, the goroutine that reads a call runs it and writes its
// reply (sdk/process.go); in the host, the caller that waits for a reply
// reads the pipe itself rather than being woken by a reader goroutine (the
// "reader role", child.go), which saves a few microseconds a call.
package process
