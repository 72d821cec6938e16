package wasm

import (
	"context"
	"errors"
	"fmt"
	"github.com/hotmod/hotmod/internal/logcap"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/tetratelabs/wazero"
)

// Instance is one loaded version of a wasm module: its compiled code and a
// pool of guests (instances of that code, each a Go runtime with its own
// heap) that calls take turns on. Its methods are safe for concurrent use.
//
// Each guest is a separate copy of the module's state: OnInit runs in every
// guest before it serves its first call (with the configuration Init was
// given), OnClose in every guest when the version is closed, and package
// variables are not shared between guests. A guest that traps, exits,
// panics or is interrupted at a call's deadline is thrown away; the next
// call that needs one starts a fresh guest.
type Instance struct {
	l        *Loader
	eng      *engine  // the runtime of its tier
	entries  []string // its files in the compilation cache; guarded by l.mu
	path     string
	sum      string
	manifest sdk.Manifest
	about    About
	compiled wazero.CompiledModule
	modCfg   wazero.ModuleConfig
	attrs    []slog.Attr
	size     int

	outputLimit *logcap.Limiter // what its guests print may log, all together
	pages       uint32          // the memory limit, for messages

	// The pool: idle guests, and tokens for guests not started yet. At any
	// time len(idle) + len(slots) + guests in use or starting = size.
	idle  chan *guest
	slots chan struct{}

	done      chan struct{} // closed by Close
	closeOnce sync.Once
	live      atomic.Int32 // guests that exist: idle, in use or starting
	released  atomic.Bool  // compiled has been closed

	initMu  sync.Mutex
	initCfg []byte        // Init's configuration, CBOR; guarded by initMu
	initGen atomic.Uint64 // bumped by every Init

	// host serves the guests' calls to other modules: the sdk.Host the
	// context of Init carried (nil until one did).
	host chain.Handle

	// starting counts guests that grow is starting; startDone, made by the
	// first watcher, is closed when one of them is done (see wait).
	startMu   sync.Mutex
	starting  int
	startDone chan struct{}

	started, discarded atomic.Int64
	memory             atomic.Int64 // bytes of linear memory of the live guests
}

var _ sdk.Invoker = (*Instance)(nil)

// About is what a guest says of how it was built.
type About struct {
	// ABI is the wasm ABI version the guest speaks, "1.1".
	ABI string `json:"abi"`
	// Go is the Go version the guest was built with, e.g. "go1.24.13".
	Go string `json:"go"`
	// SDK is the version of the hotmod SDK it was built with.
	SDK string `json:"sdk"`
}

// Tier returns the version's isolation tier.
func (i *Instance) Tier() Tier { return i.eng.tier }

// Interruptible reports whether a call's deadline stops a running guest of
// this version; when not, a caller that must not wait past a deadline
// abandons the call (the registry's Deadline guard does).
func (i *Instance) Interruptible() bool { return i.eng.tier == TierInterruptible }

// Manifest returns what the module says of itself.
func (i *Instance) Manifest() sdk.Manifest { return i.manifest }

// Sum returns the sha256 (hex) of the artifact's bytes.
func (i *Instance) Sum() string { return i.sum }

// About returns how the guest was built.
func (i *Instance) About() About { return i.about }

// Stats counts the guests this version started and threw away (after a
// trap, a panic, an exit or an interruption).
func (i *Instance) Stats() (started, discarded int64) {
	return i.started.Load(), i.discarded.Load()
}

// Live returns how many guests this version has now (idle, in use or
// starting) and the bytes of linear memory they hold (as measured when
// each last went back to the pool).
func (i *Instance) Live() (guests int, memoryBytes int64) {
	return int(i.live.Load()), i.memory.Load()
}

// Invoke calls a method with a params map: the map is encoded as CBOR,
// the guest decodes it (straight into the In struct of a typed method) and
// replies with its result, decoded here into a map, or with an error that
// keeps its code. Params outside the value model are a bad_params error.
func (i *Instance) Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, i.ctxError(method, err)
	}
	g, err := i.acquire(ctx, method)
	if err != nil {
		return nil, err
	}
	req := append(g.scratch[:0], method...)
	if len(params) > 0 {
		if req, err = cbor.Append(req, params); err != nil {
			g.keepScratch(req)
			i.release(g)
			return nil, sdk.Errorf(sdk.CodeBadParams, "%s.%s: params %s", i.manifest.Name, method, trimCBOR(err))
		}
	}
	g.keepScratch(req)
	reply, flags, err := i.roundTrip(ctx, g, req, len(method))
	if err != nil {
		return nil, i.fail(g, method, err)
	}
	if flags&replyError != 0 {
		return nil, i.replyError(g, method, reply, flags)
	}
	var out map[string]any
	if len(reply) == 0 {
		out = map[string]any{}
	} else {
		out, err = cbor.UnmarshalMap(reply)
	}
	i.release(g)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeModule, "%s.%s returned a result this host cannot read: %v", i.manifest.Name, method, err)
	}
	return out, nil
}

// InvokeCBOR calls a method with params already encoded as a CBOR map
// (none means an empty map) and returns the result as CBOR: the path for
// hosts that encode and decode typed values themselves (sdk.EncodeCBOR,
// sdk.DecodeCBOR), without maps on either side.
func (i *Instance) InvokeCBOR(ctx context.Context, method string, params []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, i.ctxError(method, err)
	}
	g, err := i.acquire(ctx, method)
	if err != nil {
		return nil, err
	}
	req := append(append(g.scratch[:0], method...), params...)
	g.keepScratch(req)
	reply, flags, err := i.roundTrip(ctx, g, req, len(method))
	if err != nil {
		return nil, i.fail(g, method, err)
	}
	if flags&replyError != 0 {
		return nil, i.replyError(g, method, reply, flags)
	}
	out := append([]byte(nil), reply...)
	i.release(g)
	return out, nil
}

func (i *Instance) roundTrip(ctx context.Context, g *guest, req []byte, methodLen int) ([]byte, uint64, error) {
	if len(req) > maxRequest {
		return nil, 0, sdk.Errorf(sdk.CodeBadParams, "%s.%s: the params are %d bytes encoded, over the limit of %d", i.manifest.Name, string(req[:methodLen]), len(req)-methodLen, maxRequest-methodLen)
	}
	if err := g.request(ctx, req); err != nil {
		return nil, 0, err
	}
	return g.invoke(ctx, g.call, uint64(methodLen), uint64(len(req)-methodLen))
}

// replyError returns the guest's error reply, releasing or (after a
// recovered panic) discarding the guest.
func (i *Instance) replyError(g *guest, method string, reply []byte, flags uint64) error {
	err := g.replyError(reply, flags)
	var c *crash
	if errors.As(err, &c) {
		i.discard(g, method, c)
		return c.err
	}
	i.release(g)
	return err
}

// fail discards g after a failed round trip and returns the caller's error.
func (i *Instance) fail(g *guest, method string, err error) error {
	var c *crash
	if !errors.As(err, &c) {
		i.release(g) // a bad request: the guest never ran
		return err
	}
	err = i.crashError(g, method, c) // before discard: it looks at the guest's memory
	i.discard(g, method, c)
	return err
}

// crashError words what happened to a guest during a call of method ("" for
// a hook, named by hook).
func (i *Instance) crashError(g *guest, what string, c *crash) error {
	where := i.manifest.Name + "." + what
	switch {
	case c.err != nil:
		return c.err
	case i.l.isClosed():
		return sdk.Errorf(sdk.CodeNotActive, "%s: the wasm loader closed while the call ran", where)
	case c.timeout:
		return sdk.Errorf(sdk.CodeTimeout, "%s: %s; the guest was interrupted and discarded", where, c.msg)
	case g.outOfMemory(c, i.pages):
		return sdk.Errorf(sdk.CodePanic,
			"%s: the guest ran out of memory at the limit of %d pages (%s) and was discarded; if the module needs more, raise the wasm transport's memory limit (Config.MemoryLimitPages)%s",
			where, i.pages, mib(i.pages), g.said())
	}
	return sdk.Errorf(sdk.CodePanic, "%s crashed: %s; the guest was discarded", where, c.msg)
}

func (i *Instance) ctxError(method string, err error) error {
	return sdk.Errorf(sdk.CodeTimeout, "%s.%s: %v before the call started", i.manifest.Name, method, err)
}

// acquire returns a guest for one call: an idle one, or a new one while
// the pool is not full, or the first one released (see wait). what names
// the call for errors.
//
// A call into a trusted guest first takes one of the loader's running
// slots (see Config.TrustedCalls), within ctx; a nested call runs on the
// goroutine of the call that made it, which holds one already.
func (i *Instance) acquire(ctx context.Context, what string) (*guest, error) {
	run := i.l.running
	if i.Interruptible() || chain.Depth(ctx) > 0 {
		return i.acquireGuest(ctx, what)
	}
	select {
	case run <- struct{}{}:
	default:
		select {
		case run <- struct{}{}:
		case <-ctx.Done():
			return nil, sdk.Errorf(sdk.CodeTimeout,
				"%s.%s: %v while waiting for one of the %d calls of trusted wasm modules that may run at once (Go cannot pre-empt a running guest; see Config.TrustedCalls)",
				i.manifest.Name, what, ctx.Err(), cap(run))
		case <-i.done:
			return nil, i.closedError()
		}
	}
	g, err := i.acquireGuest(ctx, what)
	if err != nil {
		<-run
		return nil, err
	}
	g.running = run
	return g, nil
}

// leave gives back the running slot g holds, if any.
func (g *guest) leave() {
	if g.running != nil {
		<-g.running
		g.running = nil
	}
}

func (i *Instance) acquireGuest(ctx context.Context, what string) (*guest, error) {
	var g *guest
	select {
	case g = <-i.idle:
	default:
		if i.isClosed() {
			return nil, i.closedError()
		}
		var err error
		if g, err = i.wait(ctx, what); err != nil {
			return nil, err
		}
	}
	if i.isClosed() {
		i.release(g)
		return nil, i.closedError()
	}
	if g.initGen != i.initGen.Load() {
		if err := i.runInit(ctx, g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// wait returns a guest when none was idle: a new one while the pool is not
// full, or else the first one released, within ctx.
//
// A nested call (chain.Depth(ctx) > 0: a module calling another one, or
// itself, through the host) does not wait for a guest a call holds: with
// every guest busy and the pool full it fails at once with overloaded. The
// guest it would wait for may be held by its own chain (a → a, a → b → a),
// or by another chain that waits for a guest this chain holds; either
// waits for this call to return, and none would end before the deadline.
// It does wait for a guest that is starting, which no call holds.
func (i *Instance) wait(ctx context.Context, what string) (*guest, error) {
	if chain.Depth(ctx) > 0 {
		return i.waitNested(ctx, what)
	}
	select {
	case g := <-i.idle:
		return g, nil
	case <-i.slots:
		return i.grow(ctx)
	case <-ctx.Done():
		return nil, i.waitTimeout(ctx, what)
	case <-i.done:
		return nil, i.closedError()
	}
}

// waitNested is wait for a nested call: while guests are starting, it
// waits for the next one to be ready (it may go to the call that started
// it; then it looks again).
func (i *Instance) waitNested(ctx context.Context, what string) (*guest, error) {
	for {
		select {
		case g := <-i.idle:
			return g, nil
		case <-i.slots:
			return i.grow(ctx)
		default:
		}
		next := i.startWatch()
		if next == nil {
			return nil, sdk.Errorf(sdk.CodeOverloaded,
				"%s.%s: all %d instances of %s are busy, and this call comes from another module (%s): a nested call does not wait for an instance, as the one it would wait for may be held by its own chain of calls; try again later, or raise the wasm transport's PoolSize",
				i.manifest.Name, what, i.size, i.label(), chain.Path(ctx, i.label()))
		}
		select {
		case g := <-i.idle:
			return g, nil
		case <-i.slots:
			return i.grow(ctx)
		case <-next:
		case <-ctx.Done():
			return nil, i.waitTimeout(ctx, what)
		case <-i.done:
			return nil, i.closedError()
		}
	}
}

func (i *Instance) waitTimeout(ctx context.Context, what string) error {
	return sdk.Errorf(sdk.CodeTimeout, "%s.%s: %v while waiting for a free instance (all %d busy)", i.manifest.Name, what, ctx.Err(), i.size)
}

// startBegin and startEnd count a guest that grow starts.
func (i *Instance) startBegin() {
	i.startMu.Lock()
	i.starting++
	i.startMu.Unlock()
}

func (i *Instance) startEnd() {
	i.startMu.Lock()
	i.starting--
	if i.startDone != nil {
		close(i.startDone)
		i.startDone = nil
	}
	i.startMu.Unlock()
}

// startWatch returns a channel closed when the next guest being started is
// done, or nil when none is starting.
func (i *Instance) startWatch() <-chan struct{} {
	i.startMu.Lock()
	defer i.startMu.Unlock()
	if i.starting == 0 {
		return nil
	}
	if i.startDone == nil {
		i.startDone = make(chan struct{})
	}
	return i.startDone
}

func (i *Instance) closedError() error {
	return sdk.Errorf(sdk.CodeNotActive, "%s@%s is closed", i.manifest.Name, i.manifest.Version)
}

func (i *Instance) isClosed() bool {
	select {
	case <-i.done:
		return true
	default:
		return false
	}
}

// StartTimeout bounds how long a guest may take to start (instantiate and
// run its package initialisation), whatever the caller's context allows.
var StartTimeout = 30 * time.Second

// HookTimeout bounds OnClose, which runs with no caller's context.
var HookTimeout = 5 * time.Second

// grow starts a new guest for a caller that holds a slot token. The guest
// starts on the loader's context (which Loader.Close cancels), not the
// caller's, so that a start is never wasted: if the
// caller gives up first, or takes a guest that another call released
// meanwhile (a start takes milliseconds, a call microseconds), the new
// guest joins the pool when it is ready.
func (i *Instance) grow(ctx context.Context) (*guest, error) {
	const (
		waiting = iota
		gaveUp
		delivered
	)
	var state atomic.Int32
	type result struct {
		g   *guest
		err error
	}
	ch := make(chan result, 1)
	i.startBegin()
	go func() {
		defer i.startEnd()
		g, err := i.startGuest(i.l.ctx, i.modCfg)
		if state.CompareAndSwap(waiting, delivered) {
			ch <- result{g, err}
			return
		}
		if err != nil { // nobody waits: give the slot back
			i.slots <- struct{}{}
			return
		}
		i.release(g)
	}()
	// take is the result once it is delivered: the caller keeps a guest,
	// gives back the slot of a start that failed.
	take := func(r result) (*guest, error) {
		if r.err != nil {
			i.slots <- struct{}{}
		}
		return r.g, r.err
	}
	select {
	case r := <-ch:
		return take(r)
	case g := <-i.idle:
		if state.CompareAndSwap(waiting, gaveUp) {
			return g, nil
		}
		i.release(g) // the new guest was delivered at the same moment
		return take(<-ch)
	case <-ctx.Done():
		if state.CompareAndSwap(waiting, gaveUp) {
			return nil, sdk.Errorf(sdk.CodeTimeout, "%s: %v while a new instance was starting (it joins the pool when ready)", i.manifest.Name, ctx.Err())
		}
		g, err := take(<-ch)
		if err != nil {
			return nil, err
		}
		i.release(g)
		return nil, sdk.Errorf(sdk.CodeTimeout, "%s: %v while a new instance was starting", i.manifest.Name, ctx.Err())
	}
}

// startGuest instantiates a guest with cfg, bounded by StartTimeout.
func (i *Instance) startGuest(ctx context.Context, cfg wazero.ModuleConfig) (*guest, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, StartTimeout, fmt.Errorf("StartTimeout (%s) passed", StartTimeout))
	defer cancel()
	// Counted live first, then checked: a Close that frees the compiled code
	// either sees this guest or is seen here.
	i.up()
	if i.isClosed() {
		i.down()
		i.finish()
		return nil, i.closedError()
	}
	g, err := startGuest(ctx, i, cfg)
	if err != nil {
		i.down()
		i.finish()
		name := i.manifest.Name
		if name == "" {
			name = i.path
		}
		if i.l.isClosed() {
			return nil, sdk.Errorf(sdk.CodeNotActive, "starting an instance of %s: the wasm loader is closed", name)
		}
		return nil, sdk.Errorf(sdk.CodeIncompatible, "starting an instance of %s: %v", name, err)
	}
	i.started.Add(1)
	return g, nil
}

// runInit runs OnInit in g with the configuration Init was last given. On
// failure g goes back to the pool (it retries at its next call) or, after a
// crash, is discarded.
func (i *Instance) runInit(ctx context.Context, g *guest) error {
	i.initMu.Lock()
	cfg, gen := i.initCfg, i.initGen.Load()
	i.initMu.Unlock()
	err := g.request(ctx, cfg)
	if err == nil {
		err = g.hook(ctx, g.initFn, uint64(len(cfg)))
	}
	var c *crash
	switch {
	case errors.As(err, &c):
		err = i.crashError(g, "OnInit", c)
		i.discard(g, "OnInit", c)
		return err
	case err != nil:
		i.release(g)
		return err
	}
	g.initGen = gen
	return nil
}

// release gives g back to the pool, or retires it once the version is
// closed.
func (i *Instance) release(g *guest) {
	g.leave()
	g.measure()
	if i.isClosed() {
		if err := i.retire(g); err != nil {
			i.l.logger.Warn("wasm guest closed with an error", append(attrsAny(i.attrs), "error", err)...)
		}
		return
	}
	i.idle <- g
	if i.isClosed() { // Close may have emptied idle just before g got in
		i.drainIdle()
	}
}

// discard throws g away after a crash; its slot goes back to the pool.
func (i *Instance) discard(g *guest, what string, c *crash) {
	g.leave()
	g.discard()
	i.discarded.Add(1)
	i.l.logger.Warn("wasm guest discarded", append([]any{"call", what, "reason", c.Error()}, attrsAny(i.attrs)...)...)
	i.down()
	if i.isClosed() {
		i.finish()
		return
	}
	i.slots <- struct{}{}
}

// retire runs OnClose in g and closes it.
func (i *Instance) retire(g *guest) error {
	ctx, cancel := context.WithTimeout(context.Background(), HookTimeout)
	defer cancel()
	err := g.hook(ctx, g.closeFn)
	var c *crash
	if errors.As(err, &c) {
		err = i.crashError(g, "OnClose", c)
	}
	g.discard()
	i.down()
	i.finish()
	return err
}

// drainIdle retires every idle guest.
func (i *Instance) drainIdle() error {
	var errs []error
	for {
		select {
		case g := <-i.idle:
			if err := i.retire(g); err != nil {
				errs = append(errs, err)
			}
		default:
			return errors.Join(errs...)
		}
	}
}

// up and down count a guest that starts and one that is gone, for this
// version and for the loader, whose Close waits for every guest to go
// before it closes the runtime.
func (i *Instance) up() {
	i.live.Add(1)
	i.l.guests.Add(1)
}

func (i *Instance) down() {
	i.live.Add(-1)
	i.l.guests.Add(-1)
}

// finish frees the compiled code once the version is closed and its last
// guest is gone.
func (i *Instance) finish() {
	if i.isClosed() && i.live.Load() == 0 && i.released.CompareAndSwap(false, true) {
		_ = i.compiled.Close(context.Background())
		i.l.forget(i)
	}
}

// Init runs the module's OnInit hook with the host's configuration for it
// (a map of value-model values, or nil): in one guest now, and in every
// other guest before it serves its next call.
//
// The sdk.Host that ctx carries (sdk.HostFrom), if any, serves the calls
// the module's guests make to other modules (sdk.Call) from then on; a ctx
// without one keeps the Host an earlier Init got. Without a Host such calls
// fail with undeclared.
func (i *Instance) Init(ctx context.Context, cfg map[string]any) error {
	i.host.Bind(ctx)
	var b []byte
	if cfg != nil {
		var err error
		if b, err = cbor.Marshal(cfg); err != nil {
			return sdk.Errorf(sdk.CodeBadParams, "%s: configuration %s", i.manifest.Name, trimCBOR(err))
		}
	}
	i.initMu.Lock()
	i.initCfg = b
	i.initGen.Add(1)
	i.initMu.Unlock()
	g, err := i.acquire(ctx, "OnInit")
	if err != nil {
		return err
	}
	i.release(g)
	return nil
}

// Check runs the module's OnCheck self-test in one guest.
func (i *Instance) Check(ctx context.Context) error {
	g, err := i.acquire(ctx, "OnCheck")
	if err != nil {
		return err
	}
	if err := g.hook(ctx, g.check); err != nil {
		var c *crash
		if errors.As(err, &c) {
			err = i.crashError(g, "OnCheck", c)
			i.discard(g, "OnCheck", c)
			return err
		}
		i.release(g)
		return err
	}
	i.release(g)
	return nil
}

// Close runs OnClose in every idle guest and closes it; a guest still in
// use is closed the same way when its call returns. Calls that start after
// Close fail with not_active. The compiled code is freed with the last
// guest.
func (i *Instance) Close() error {
	i.closeOnce.Do(func() { close(i.done) })
	err := i.drainIdle()
	i.finish()
	i.outputLimit.Flush(i.l.logger, i.attrs)
	return err
}

func mib(pages uint32) string {
	return fmt.Sprintf("%d MiB", uint64(pages)*65536>>20)
}

func attrsAny(attrs []slog.Attr) []any {
	out := make([]any, len(attrs))
	for k, a := range attrs {
		out[k] = a
	}
	return out
}

// trimCBOR drops the codec's "cbor: " prefix from an encoding error.
func trimCBOR(err error) string {
	var e *cbor.EncodeError
	if errors.As(err, &e) {
		return "are outside the value model: " + e.Path + ": " + e.Msg
	}
	return err.Error()
}
