package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
)

// Instance is a loaded process module: one or more child processes
// (Config.PoolSize) that serve one version, supervised. Its methods are
// safe for concurrent use.
type Instance struct {
	cfg      Config
	spec     *spec
	manifest sdk.Manifest
	log      *slog.Logger
	slots    []*slot
	rr       atomic.Uint32
	host     chain.Handle // the handle Init's context carried, for the children's calls to other modules

	ctx    context.Context // ends at Close: stops restarts
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    bool
	failed    *sdk.Error
	failedCh  chan struct{}
	up        chan struct{} // closed, and replaced, whenever a child comes up
	crashes   []time.Time
	config    map[string]any // given to Init, replayed in restarted children
	inited    bool
	checked   bool
	restarts  sync.WaitGroup
	restarted atomic.Int64 // restarts begun after a child died
}

// slot is the place of one child in the pool.
type slot struct {
	cur atomic.Pointer[child] // nil while (re)starting
}

var _ sdk.Invoker = (*Instance)(nil)

func newInstance(l *Loader, sp *spec, man sdk.Manifest) *Instance {
	i := &Instance{
		cfg: l.cfg, spec: sp, manifest: man,
		log:      l.cfg.Logger.With("module", man.Name, "version", man.Version),
		slots:    make([]*slot, l.cfg.PoolSize),
		failedCh: make(chan struct{}),
		up:       make(chan struct{}),
	}
	for k := range i.slots {
		i.slots[k] = &slot{}
	}
	i.ctx, i.cancel = context.WithCancel(context.Background())
	return i
}

// Manifest returns what the module said of itself in its handshake.
func (i *Instance) Manifest() sdk.Manifest { return i.manifest }

// Sum returns the sha256 (hex) of the executable's bytes, or for a launch
// file of the launch file and the files its command and arguments name.
func (i *Instance) Sum() string { return i.spec.sum }

// PIDs returns the process ids of the children serving now.
func (i *Instance) PIDs() []int {
	var pids []int
	for _, s := range i.slots {
		if c := s.cur.Load(); c != nil && !c.dead.Load() {
			pids = append(pids, c.pid)
		}
	}
	return pids
}

// Restarts returns how many times a child of this version died and was
// restarted (or a restart was attempted).
func (i *Instance) Restarts() int64 { return i.restarted.Load() }

// Failed returns why the version failed (too many crashes), or nil.
func (i *Instance) Failed() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.failed == nil {
		return nil
	}
	return i.failed
}

// Invoke calls a method in a child. A call whose context ends is cancelled
// in the child and fails with code timeout; a child that dies during the
// call fails it with code panic (the call may or may not have run), and is
// restarted. While no child is up (between a crash and the restart), calls
// wait for one, as long as their context allows.
func (i *Instance) Invoke(ctx context.Context, method string, params map[string]any) (map[string]any, error) {
	if !utf8.ValidString(method) {
		return nil, sdk.Errorf(sdk.CodeUnknownMethod, "module %s has no method %q", i.manifest.Name, method)
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, i.timeout(method, err)
		}
		c, err := i.pick(ctx)
		if err != nil {
			return nil, err
		}
		req := request{kind: kindCall, method: method, params: params, trace: sdk.TraceParent(ctx)}
		if dl, ok := ctx.Deadline(); ok {
			if req.timeout = time.Until(dl); req.timeout <= 0 {
				return nil, i.timeout(method, context.DeadlineExceeded)
			}
		}
		rep, err := c.roundTrip(ctx, req, false)
		if err == errNotSent {
			continue // that child died before the call reached it
		}
		if err != nil {
			return nil, err
		}
		if rep.err != nil {
			return nil, rep.err
		}
		if rep.result == nil {
			return map[string]any{}, nil
		}
		return rep.result, nil
	}
}

func (i *Instance) timeout(method string, err error) error {
	return sdk.Errorf(sdk.CodeTimeout, "%s@%s.%s: %v", i.manifest.Name, i.manifest.Version, method, err)
}

// pick returns a child to call, waiting for one while none is up.
func (i *Instance) pick(ctx context.Context) (*child, error) {
	for {
		if c := i.choose(); c != nil {
			return c, nil
		}
		i.mu.Lock()
		if err := i.unavailable(); err != nil {
			i.mu.Unlock()
			return nil, err
		}
		up := i.up
		i.mu.Unlock()
		if c := i.choose(); c != nil {
			return c, nil
		}
		select {
		case <-up:
		case <-i.failedCh:
		case <-ctx.Done():
			return nil, sdk.Errorf(sdk.CodeTimeout, "%s@%s: %v while waiting for its process to restart",
				i.manifest.Name, i.manifest.Version, ctx.Err())
		}
	}
}

// unavailable is why no call can be made; i.mu must be held.
func (i *Instance) unavailable() error {
	switch {
	case i.failed != nil:
		return &sdk.Error{Code: sdk.CodeNotActive, Message: i.failed.Message}
	case i.closed:
		return sdk.Errorf(sdk.CodeNotActive, "%s@%s is closed", i.manifest.Name, i.manifest.Version)
	}
	return nil
}

// choose returns the live child with the fewest calls in flight, or nil.
func (i *Instance) choose() *child {
	if len(i.slots) == 1 {
		if c := i.slots[0].cur.Load(); c != nil && !c.dead.Load() {
			return c
		}
		return nil
	}
	n := len(i.slots)
	start := int(i.rr.Add(1))
	var best *child
	var load int32
	for k := 0; k < n; k++ {
		c := i.slots[(start+k)%n].cur.Load()
		if c == nil || c.dead.Load() {
			continue
		}
		if l := c.inflight.Load(); best == nil || l < load {
			best, load = c, l
		}
	}
	return best
}

// children returns the live children.
func (i *Instance) children() []*child {
	var cs []*child
	for _, s := range i.slots {
		if c := s.cur.Load(); c != nil && !c.dead.Load() {
			cs = append(cs, c)
		}
	}
	return cs
}

// Init runs the module's OnInit hook with the host's configuration in
// every child; restarted children run it again before they serve.
//
// The host handle ctx carries (sdk.WithHost; the registry passes one to a
// module that declares requirements) is kept: the children's calls to
// other modules (sdk.Call in their methods and hooks) go through it, each
// within the context of the call it is made for.
func (i *Instance) Init(ctx context.Context, config map[string]any) error {
	i.host.Bind(ctx)
	i.mu.Lock()
	i.config, i.inited = config, true
	i.mu.Unlock()
	for _, c := range i.children() {
		if err := i.hook(ctx, c, request{kind: kindInit, params: config}); err != nil {
			return err
		}
	}
	return nil
}

// Check runs the module's OnCheck self-test in every child; restarted
// children run it again before they serve.
func (i *Instance) Check(ctx context.Context) error {
	i.mu.Lock()
	i.checked = true
	i.mu.Unlock()
	for _, c := range i.children() {
		if err := i.hook(ctx, c, request{kind: kindCheck}); err != nil {
			return err
		}
	}
	return nil
}

func (i *Instance) hook(ctx context.Context, c *child, req request) error {
	rep, err := c.roundTrip(ctx, req, false)
	if err == errNotSent {
		return sdk.Errorf(sdk.CodePanic, "%s@%s: its process died before the %s hook could run", i.manifest.Name, i.manifest.Version, req.kind)
	}
	if err != nil {
		return err
	}
	if rep.err != nil {
		return rep.err
	}
	return nil
}

// Close stops the children: each gets the close request (its OnClose hook
// runs), then the end of its stdin, and is killed with its process group if
// it has not exited within the grace period. Close does not wait for calls
// (the registry drains them first); calls still running fail. It returns
// the OnClose hooks' errors.
func (i *Instance) Close() error {
	i.mu.Lock()
	if i.closed {
		i.mu.Unlock()
		return nil
	}
	i.closed = true
	i.mu.Unlock()
	i.cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(i.slots))
	for k, s := range i.slots {
		if c := s.cur.Swap(nil); c != nil {
			wg.Add(1)
			go func(k int, c *child) {
				defer wg.Done()
				errs[k] = c.shutdown(i.cfg.Grace)
			}(k, c)
		}
	}
	wg.Wait()
	i.restarts.Wait()
	i.spec.release()
	return errors.Join(errs...)
}

// childGone is told by a child that it is finished. A child that was
// serving is replaced after a backoff, unless the version has crashed too
// often: then it fails.
func (i *Instance) childGone(c *child, cause error) {
	var s *slot
	for _, x := range i.slots {
		if x.cur.CompareAndSwap(c, nil) {
			s = x
		}
	}
	if s == nil {
		return // not serving: closed, or a replacement that never started serving
	}
	delay, ok := i.crashed(cause)
	if !ok {
		return
	}
	i.log.Warn("process module died; restarting it", "pid", c.pid, "cause", cause.Error(), "after", delay)
	go i.restart(s, delay)
}

// crashed counts a crash and returns the delay before the restart, or false
// when the version must not restart (it failed now, or is closed). It adds
// one to i.restarts when it returns true.
func (i *Instance) crashed(cause error) (time.Duration, bool) {
	i.mu.Lock()
	if i.closed || i.failed != nil {
		i.mu.Unlock()
		return 0, false
	}
	now := time.Now()
	recent := i.crashes[:0]
	for _, t := range i.crashes {
		if now.Sub(t) < i.cfg.CrashWindow {
			recent = append(recent, t)
		}
	}
	i.crashes = append(recent, now)
	n := len(i.crashes)
	if n >= i.cfg.MaxCrashes {
		i.failed = sdk.Errorf(sdk.CodePanic, "%s@%s: its process failed %d times within %s; the last time: %v",
			i.manifest.Name, i.manifest.Version, n, i.cfg.CrashWindow, cause)
		close(i.failedCh)
		err := i.failed
		i.mu.Unlock()
		i.log.Error("process module failed", "error", err.Error())
		for _, s := range i.slots {
			if c := s.cur.Swap(nil); c != nil {
				c.kill("the version failed")
			}
		}
		if i.cfg.OnFailed != nil {
			go i.cfg.OnFailed(i, err)
		}
		return 0, false
	}
	i.restarts.Add(1)
	i.restarted.Add(1)
	i.mu.Unlock()
	delay := i.cfg.Backoff
	for k := 1; k < n && delay < maxBackoff; k++ {
		delay *= 2
	}
	return min(delay, maxBackoff), true
}

// restart starts a replacement for the child of slot s after delay, and
// again after every failed attempt, until one serves or the version fails
// or closes.
func (i *Instance) restart(s *slot, delay time.Duration) {
	defer i.restarts.Done()
	for {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-i.ctx.Done():
			t.Stop()
			return
		}
		err := i.replace(s)
		if err == nil {
			return
		}
		i.log.Warn("process module restart failed", "error", err.Error())
		var ok bool
		if delay, ok = i.crashed(err); !ok {
			return
		}
		i.restarts.Done() // crashed added one for a restart: this loop is it
	}
}

// replace starts a child for slot s: handshake, the same manifest, Init
// and Check again if they ran; then it serves.
func (i *Instance) replace(s *slot) error {
	ctx, cancel := context.WithTimeout(i.ctx, i.cfg.StartTimeout)
	defer cancel()
	c, man, err := startChild(ctx, &Loader{cfg: i.cfg}, i.spec, i.manifest.Name+"@"+i.manifest.Version)
	if err != nil {
		return fmt.Errorf("%s@%s: restart: %v", i.manifest.Name, i.manifest.Version, err)
	}
	if man.Name != i.manifest.Name || man.Version != i.manifest.Version || man.Fingerprint != i.manifest.Fingerprint {
		c.adopt(i)
		c.shutdown(i.cfg.Grace)
		return fmt.Errorf("%s@%s: restart: the module changed under the running version: it is now %s@%s (contract %.12s, was %.12s); "+
			"rewrite its artifact so that the new version is loaded as such", i.manifest.Name, i.manifest.Version,
			man.Name, man.Version, man.Fingerprint, i.manifest.Fingerprint)
	}
	c.adopt(i)
	i.mu.Lock()
	config, inited, checked := i.config, i.inited, i.checked
	i.mu.Unlock()
	if inited {
		err = i.hook(ctx, c, request{kind: kindInit, params: config})
	}
	if err == nil && checked {
		err = i.hook(ctx, c, request{kind: kindCheck})
	}
	if err != nil {
		c.shutdown(i.cfg.Grace)
		return fmt.Errorf("%s@%s: restart: %v", i.manifest.Name, i.manifest.Version, err)
	}
	i.mu.Lock()
	if i.unavailable() != nil {
		i.mu.Unlock()
		c.shutdown(i.cfg.Grace)
		return nil
	}
	i.serve(s, c)
	close(i.up)
	i.up = make(chan struct{})
	i.mu.Unlock()
	i.log.Info("process module restarted", "pid", c.pid)
	return nil
}

// serve puts an adopted child in its slot. One that died before it got
// there is replaced at once, as if it had died serving.
func (i *Instance) serve(s *slot, c *child) {
	s.cur.Store(c)
	if c.dead.Load() {
		go i.childGone(c, c.goneErr())
	}
}
