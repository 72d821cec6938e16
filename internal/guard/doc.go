// Package guard is the call path between the registry and a module: a chain
// of interceptors, composed once per module version when it is activated,
// that keeps one bad module from taking the host down.
//
// An Interceptor wraps a Handler the way a gRPC interceptor does. Chain
// applies a list of them to a version's Invoke, outermost first, and the
// registry keeps the Handler it returns for every call to that version. The
// guards here are interceptors; metrics and tracing will be too.
//
// Standard returns the guards in the order they are meant to run:
//
//  1. Breaker: per method of a version (a failing method is cut off, the
//     others keep answering). Closed, it lets calls through and watches their
//     outcomes; after Consecutive failures in a row, or a FailureRate of the
//     last Window calls, it opens and the method's calls fail fast with circuit_open until
//     its cool-down ends; then one probe call decides (half-open → closed,
//     or open again). It is outermost so that an open circuit refuses a
//     call before it takes anything else.
//  2. Bulkhead: per module (all versions of a module share it). At most
//     Limit calls run at once; the next is refused with overloaded at once,
//     or after waiting at most Wait. Nothing queues beyond that.
//  3. Deadline: per method. A call gets the deadline the host configured
//     (Default 10s). A module that cannot be pre-empted (native, builtin)
//     runs on a goroutine of its own, so that the caller gets timeout at the
//     deadline while the call runs on, abandoned; Stats counts those, and
//     OnPileUp is told when too many are still running (the registry then
//     quarantines the version).
//  4. Recover: a panic in the module becomes a panic error, and its stack
//     goes to the log. It is innermost so that it also runs on the
//     Deadline guard's goroutine.
//
// # Failures
//
// The breaker, and Stats.Failures, count a call as failed when it ends in
// an error that says the module is unwell: panic, timeout, internal,
// module_error, and any other code, including codes that a module's own
// calls to other modules brought back. These say nothing about the module
// and are not counted either way:
//
//   - bad_params and unknown_method: the caller's mistake;
//   - overloaded and circuit_open: the call was refused before the module ran;
//   - any error but panic once the caller's own context has ended: the
//     caller gave up or gave too little time.
//
// # Cost
//
// A call that meets a closed breaker, a free bulkhead slot and no deadline
// costs three atomic read-modify-writes (the breaker's call count, the
// bulkhead's take and give back), a look-up of the method in the breaker's
// sync.Map, four function calls and no allocation: about 45–55ns on the
// project's machines (BenchmarkChainOverhead). A deadline
// costs what context.WithTimeout costs (four allocations), and for native
// and builtin modules a goroutine and its hand-off as well: there is no
// other way to return to a caller while Go code that ignores its context
// runs on. A caller whose own deadline is sooner saves the WithTimeout.
//
// # Why not a circuit breaker library?
//
// sony/gobreaker and failsafe-go were measured first (Go 1.26.8, the same
// machines): both take a mutex on every call, twice, and gobreaker reads
// the clock twice per call, which costs 50–150ns here by itself. Per call,
// gobreaker's Execute cost 290–740ns, failsafe-go's Get 720–1000ns and 15
// allocations, and its permit API (TryAcquirePermit, Record…) 66–130ns;
// the budget of the whole chain is 50ns. This breaker reads one atomic word
// to find itself closed, counts the call with one atomic add, and keeps
// failures out of the fast path: the clock and the lock are only for
// failures and transitions. That is also why its failure-rate window counts
// calls rather than seconds.
package guard
