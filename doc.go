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
// A caller names a module as "name" (its newest active version, or during
// a rollout its stable version and, for a share of calls, the canary),
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
//     name and version, and the module's Init and Check hooks passed. A
//     version whose requirements (see below) are not all met by active
//     versions stays here, with the reason ("waiting for geo ^1.2").
//  3. Active: calls are routed to it. Routing switches atomically; readers
//     never take a lock. An Active version goes back to Validated (waiting)
//     when something it requires is unloaded by force.
//  4. Draining: it was replaced or removed. New calls go elsewhere; calls in
//     flight finish, bounded by the drain timeout.
//  5. Unloaded: its Close hook ran and it is gone from the registry.
//
// Standby, beside Active: loaded and valid, not routed. Under a canary or
// manual rollout policy (WithRollout) the version a new one replaces stays
// Standby for a while (WithStandby), so Rollback is a routing change, not a
// reload; a manual rollout's new version waits Standby until Promote. See
// rollout.go.
//
// A failure before Active leaves the version Failed with a reason, keeps
// whatever was serving before serving, and is reported by an event, a log
// line and Modules. An Active version can also become Failed: when its
// transport gives up on it (a process module that keeps crashing) or the
// guards quarantine it (native calls that keep running past their
// deadline). It stops being routed at once and stays listed, with the
// reason, until its artifact changes or goes away.
//
// # Dependencies
//
// A module declares what it requires — modules by name, capabilities
// whatever module provides them — with semver ranges, and the capabilities
// it provides:
//
//	sdk.New("checkout", "1.0.0").Requires("pricing", "^1.1").RequiresCapability("tax", "^2")
//	sdk.New("vat", "2.3.0").Provides("tax", "2.1.0")
//
// The registry activates a module only while every requirement is met by an
// active version, so modules activate in dependency order whatever order
// their artifacts arrive in. It refuses a version that would close a cycle
// of requirements, naming it ("a@1.0.0 → b@2.1.0 → a"); refuses to unload
// a version an active module needs (ErrInUse) unless Force is given, which
// sends those modules back to waiting (a watched file that is removed is
// such a forced unload); and refuses a swap whose new version leaves a range
// some active module requires unmet, keeping the old version serving. Find
// lists the providers of a capability.
//
// A module calls what it declared, and only that, with sdk.Call or
// sdk.CallAs: through the host, on every transport (native and builtin
// modules get a handle at Init; wasm guests call a host function; process
// modules send the call back over their pipe). The call carries the
// caller's context, so its deadline, and stops at a depth limit
// (WithCallDepth, ErrCallDepth) so that a chain that comes back on itself
// ends with an error that shows it, not a deadlock. Anything not declared is
// ErrUndeclared.
package hotmod
