// Package hotmod is a hot-loading module registry for Go programs.
//
// A host creates a Registry, loads modules into it — from artifacts on disk
// (Load, or Watch on a directory) or compiled into the host (Register) — and
// calls them through one contract:
//
//	reg := hotmod.New()
//	defer reg.Close(context.Background())
//	if err := reg.Watch(ctx, "./plugins"); err != nil { … }
//	out, err := reg.Invoke(ctx, "greeter", "hello", map[string]any{"name": "Ada"})
//
// A caller names a module as "name" (its newest active version),
// "name@1.2.3" (exactly that version) or "name@^1.2" (the newest active
// version in a semver range).
//
// # Lifecycle
//
// Every version of every module goes through these steps; each transition is
// atomic and emits an Event (see Subscribe):
//
//  1. Loaded: the artifact was checked and opened, and its manifest read. For
//     a native plugin this means a build-info preflight, a probe in a
//     throwaway child process and a private, content-addressed copy (see
//     internal/native).
//  2. Validated: the manifest is sound, no other artifact holds the same
//     name and version, and the module's Init and Check hooks passed.
//  3. Active: calls are routed to it. Routing switches atomically; readers
//     never take a lock.
//  4. Draining: it was replaced or removed. New calls go elsewhere; calls in
//     flight finish, bounded by the drain timeout.
//  5. Unloaded: its Close hook ran and it is gone from the registry.
//
// A failure before Active leaves the version Failed with a reason, keeps
// whatever was serving before serving, and is reported by an event, a log
// line and Modules. An Active version can also become Failed: when its
// transport gives up on it (a process module that keeps crashing) or the
// guards quarantine it (native calls that keep running past their
// deadline). It stops being routed at once and stays listed, with the
// reason, until its artifact changes or goes away.
package hotmod
