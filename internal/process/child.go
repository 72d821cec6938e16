package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/hotmod/hotmod/internal/logcap"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hotmod/hotmod/internal/proctree"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/wire"
)

// child is one running child process and the host's end of its protocol.
type child struct {
	inst  *Instance // nil until adopted
	spec  *spec
	label atomic.Pointer[string] // "greeter@1.0.0", or the artifact's name before the handshake
	cmd   *exec.Cmd
	pid   int
	tree  *proctree.Tree // what it starts, at any depth
	codec *codec         // at the protocol version the child picked

	stdout *os.File
	in     *bufio.Reader
	w      *pipeWriter
	stderr *stderrTail

	nextID   atomic.Int64
	received atomic.Uint64 // replies read, for the heartbeat
	inflight atomic.Int32  // calls (not pings) waiting for a reply
	dead     atomic.Bool   // gone is set
	closing  atomic.Bool   // shutdown has begun

	mu      sync.Mutex
	pending map[int64]*call
	nested  map[int64]*nestedCall // the child's calls to other modules in flight, by its id (see nested.go)
	reading bool                  // a goroutine holds the reader role
	adopted bool                  // the handshake is done and an instance owns the child
	ended   bool                  // the process has exited (it may have left replies to read)
	killMsg string                // why the host killed it; the first reason wins
	gone    error                 // why the child is finished; set once

	// procMu orders killing the process group against reaping the leader:
	// the group is only signalled while the leader is not reaped, so its id
	// cannot have been reused.
	procMu sync.Mutex
	reaped bool
	state  *os.ProcessState
	exited chan struct{} // closed once the process is reaped
	done   chan struct{} // closed once gone is set
}

// call is one request waiting for its reply.
type call struct {
	ch     chan struct{} // 1-buffered; signalled, under child.mu, when state changes
	state  int           // guarded by child.mu
	rep    message
	err    error
	id     int64
	ping   bool // a heartbeat or close: not counted in inflight, never cancelled in the child
	method string
	// ctx is the caller's context (of a call, init or check): the child's
	// calls to other modules on behalf of this request run within it.
	ctx context.Context
}

// The states of a call.
const (
	callWaiting   = iota // its caller waits for the reply, or reads replies itself
	callPromoted         // its caller is to take the reader role
	callDone             // rep or err is set
	callAbandoned        // its caller gave up; the reply will be dropped
)

var calls = sync.Pool{New: func() any { return &call{ch: make(chan struct{}, 1)} }}

func getCall() *call { return calls.Get().(*call) }

// signal wakes the call's caller; c.mu must be held.
func (cl *call) signal() {
	select {
	case cl.ch <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// result returns a done call's outcome and recycles it.
func (cl *call) result() (message, error) {
	rep, err := cl.rep, cl.err
	select {
	case <-cl.ch:
	default:
	}
	*cl = call{ch: cl.ch}
	calls.Put(cl)
	return rep, err
}

// bufs are request buffers.
var bufs = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// putBuf puts a buffer back, unless it grew huge.
func putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		bufs.Put(bp)
	}
}

// errNotSent: the child was gone before the request was written; the call
// may go to another child.
var errNotSent = errors.New("process: the child is gone; the request was not sent")

// errWouldBlock: the pipe takes nothing now.
var errWouldBlock = errors.New("process: the pipe is full")

// startChild starts a child process and completes its handshake. The child
// is not adopted yet: nothing reads its replies until adopt.
func startChild(ctx context.Context, l *Loader, sp *spec, label string) (*child, sdk.Manifest, error) {
	c := &child{spec: sp, pending: map[int64]*call{}, nested: map[int64]*nestedCall{}, exited: make(chan struct{}), done: make(chan struct{})}
	c.label.Store(&label)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, sdk.Manifest{}, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, sdk.Manifest{}, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, sdk.Manifest{}, err
	}
	c.tree = proctree.New(l.cfg.cgroups)
	cmd := &exec.Cmd{
		Path: sp.path, Args: append([]string{sp.argv0}, sp.args...), Dir: sp.dir,
		Env:   append(sp.env[:len(sp.env):len(sp.env)], c.tree.Env()),
		Stdin: inR, Stdout: outW, Stderr: errW, SysProcAttr: sysProcAttr(c.tree.Cgroup()),
	}
	if sp.exeFile != nil {
		cmd.ExtraFiles = []*os.File{sp.exeFile}
	}
	err = startCmd(cmd)
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		c.tree.Kill() // gives back its cgroup
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, sdk.Manifest{}, fmt.Errorf("cannot start %s: %v", sp.describe(), err)
	}
	c.cmd, c.pid = cmd, cmd.Process.Pid
	c.tree.Started(c.pid)
	c.stdout = outR
	c.in = bufio.NewReaderSize(outR, 64<<10)
	c.w = newPipeWriter(inW)
	c.stderr = newStderrTail()
	go c.reap()
	go c.pumpStderr(errR, l.cfg.Logger)

	man, err := c.handshake(ctx, l.cfg.StartTimeout)
	if err != nil {
		c.kill("its handshake failed")
		c.w.close()
		c.stdout.Close()
		<-c.exited
		return nil, sdk.Manifest{}, err
	}
	return c, man, nil
}

// handshake reads and checks the hello line.
func (c *child) handshake(ctx context.Context, timeout time.Duration) (sdk.Manifest, error) {
	deadline := time.Now().Add(timeout)
	ctxDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, ctxDeadline = d, true
	}
	c.stdout.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.stdout.SetReadDeadline(time.Unix(1, 0)) })
	line, err := readLine(c.in, maxHello)
	stop()
	c.stdout.SetReadDeadline(time.Time{})
	if err != nil {
		var pe *protocolError
		switch {
		case ctx.Err() != nil:
			return sdk.Manifest{}, fmt.Errorf("loading was cancelled before the handshake: %v", ctx.Err())
		case ctxDeadline && errors.Is(err, os.ErrDeadlineExceeded):
			return sdk.Manifest{}, fmt.Errorf("loading was cancelled before the handshake: %v", context.DeadlineExceeded)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return sdk.Manifest{}, fmt.Errorf("no handshake within %s: the process runs (pid %d) but wrote nothing on stdout%s; "+
				"is it a hotmod module built with sdk.Main, or a program that speaks the process protocol?", timeout, c.pid, c.stderr.suffix())
		case errors.As(err, &pe):
			return sdk.Manifest{}, fmt.Errorf("its handshake is broken: %v%s", pe.Msg, c.stderr.suffix())
		case errors.Is(err, io.EOF):
			return sdk.Manifest{}, fmt.Errorf("it exited before its handshake: %s%s", c.exitStatus(time.Second), c.stderr.suffix())
		}
		return sdk.Manifest{}, fmt.Errorf("reading its handshake: %v%s", err, c.stderr.suffix())
	}
	h, err := wire.ParseHello(line)
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("%v: is it a hotmod module built with sdk.Main, or a program that speaks the process protocol?%s", err, c.stderr.suffix())
	}
	if h.Error != "" {
		return sdk.Manifest{}, fmt.Errorf("it refused to start: %s", h.Error)
	}
	if h.Version < minVersion || h.Version > maxVersion {
		return sdk.Manifest{}, fmt.Errorf("it picked process protocol version %d; this host speaks %d-%d", h.Version, minVersion, maxVersion)
	}
	if !contains(c.spec.encodings, string(h.Encoding)) {
		return sdk.Manifest{}, fmt.Errorf("it picked the encoding %q; this host offered %s", h.Encoding, strings.Join(c.spec.encodings, ","))
	}
	if len(h.Manifest) == 0 {
		return sdk.Manifest{}, errors.New(`its hello has no "manifest"`)
	}
	man, err := sdk.ParseManifest(h.Manifest)
	if err != nil {
		return sdk.Manifest{}, fmt.Errorf("its %v", err)
	}
	c.codec = codecFor(string(h.Encoding), h.Version, c.in)
	label := man.Name + "@" + man.Version
	c.label.Store(&label)
	return man, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// adopt makes c serve inst.
func (c *child) adopt(inst *Instance) {
	c.mu.Lock()
	c.inst = inst
	c.adopted = true
	ended := c.ended
	c.mu.Unlock()
	if ended {
		c.exitedNow()
	}
	if inst.cfg.Heartbeat > 0 {
		go c.heartbeat(inst.cfg.Heartbeat)
	}
}

func (c *child) name() string { return *c.label.Load() }

// reap waits for the process to exit, kills what is left of its process
// group while the leader is a zombie, then reaps it.
func (c *child) reap() {
	if waitExited(c.pid) {
		c.procMu.Lock()
		killGroup(c.cmd.Process)
		c.tree.Kill() // what it left: the descendants that left its group
		c.cmd.Wait()
		c.reaped = true
		c.tree.Reaped()
		c.procMu.Unlock()
	} else { // no way to wait without reaping: reap, then kill the group
		c.cmd.Wait()
		c.procMu.Lock()
		c.reaped = true
		c.tree.Reaped()
		killGroup(c.cmd.Process)
		c.tree.Kill()
		c.procMu.Unlock()
	}
	c.state = c.cmd.ProcessState
	close(c.exited)
	c.exitedNow()
}

// exitedNow makes sure that the replies an exited child left in the pipe
// are read, and the end of the pipe is seen: someone takes the reader role
// if no one holds it. A pipe that a leftover grandchild keeps open is
// closed after a while.
func (c *child) exitedNow() {
	c.mu.Lock()
	c.ended = true
	start := c.adopted && !c.reading && c.gone == nil
	if start {
		c.reading = true
	}
	adopted := c.adopted
	c.mu.Unlock()
	if start {
		go c.lead(context.Background(), nil)
	}
	if adopted {
		time.AfterFunc(time.Second, func() {
			if !c.dead.Load() {
				c.stdout.Close()
			}
		})
	}
}

// kill kills the child's process group, remembering why (the first reason
// wins). The reader then sees the end of stdout and finishes the child.
func (c *child) kill(why string) {
	c.mu.Lock()
	if c.killMsg == "" {
		c.killMsg = why
	}
	c.mu.Unlock()
	c.killGroup()
}

// killGroup kills the child's process group and every process it started
// (its tree, at any depth), unless it is reaped.
func (c *child) killGroup() {
	c.procMu.Lock()
	if !c.reaped {
		c.tree.Kill() // first, while its descendants are still its
		killGroup(c.cmd.Process)
	}
	c.procMu.Unlock()
}

// exitStatus waits up to wait for the process to exit and describes how it
// ended.
func (c *child) exitStatus(wait time.Duration) string {
	select {
	case <-c.exited:
	case <-time.After(wait):
		c.kill("it closed stdout but did not exit")
		<-c.exited
	}
	if c.state == nil {
		return "unknown exit status"
	}
	return c.state.String()
}

// The reader role. Replies are read by the callers waiting for them: the
// first caller to wait reads (it "leads"), hands the replies that are not
// its own to their callers, and when its own has come, passes the role to
// another waiting caller. A caller that reads its own reply wakes up from
// the poller with no goroutine switch in between, which is most of a
// call's cost. The role goes to a goroutine of its own only while replies
// are due that no caller waits for: late replies to abandoned calls, and
// whatever an exited child left in the pipe.

// await waits for cl's reply, reading replies itself when it may.
func (c *child) await(ctx context.Context, cl *call) (message, error) {
	c.mu.Lock()
	if cl.state == callDone {
		c.mu.Unlock()
		return cl.result()
	}
	if !c.reading && c.gone == nil {
		c.reading = true
		c.mu.Unlock()
		return c.lead(ctx, cl)
	}
	c.mu.Unlock()
	for {
		select {
		case <-cl.ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
		switch cl.state {
		case callDone:
			c.mu.Unlock()
			return cl.result()
		case callPromoted:
			cl.state = callWaiting
			c.mu.Unlock()
			return c.lead(ctx, cl)
		}
		if ctx.Err() == nil {
			c.mu.Unlock()
			continue // a stale wake-up
		}
		cl.state = callAbandoned
		c.mu.Unlock()
		return message{}, c.abandon(ctx, cl)
	}
}

// lead holds the reader role: it reads replies until own's has come (own
// nil: until no reply is due that no caller waits for), then passes the
// role on. ctx is own's; when it ends, own is abandoned.
func (c *child) lead(ctx context.Context, own *call) (message, error) {
	if ctx.Done() != nil {
		// The context's end interrupts the read. No read deadline is set
		// for the call's deadline: that would cost a timer of the poller's
		// on every call, and the context has its own.
		stop := context.AfterFunc(ctx, c.interrupt)
		defer stop()
	}
	for {
		if own != nil && ctx.Err() != nil {
			c.mu.Lock()
			if own.state == callDone { // failed with the child meanwhile
				c.mu.Unlock()
				c.stepDown()
				return own.result()
			}
			own.state = callAbandoned
			c.mu.Unlock()
			c.stepDown()
			return message{}, c.abandon(ctx, own)
		}
		rep, err := c.codec.readMessage()
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				// An interruption: this leader's context ended, or another
				// leader's did and its interruption came late. It is
				// cleared before the context is looked at (a context ends
				// before it interrupts), so that none is lost.
				c.stdout.SetReadDeadline(time.Time{})
				continue
			}
			c.finish(err)
			c.stepDown()
			if own == nil {
				return message{}, nil
			}
			return own.result() // finish failed it
		}
		if !c.deliver(rep, own) {
			c.stepDown()
			if own == nil {
				return message{}, nil
			}
			return own.result()
		}
		if own != nil {
			c.mu.Lock()
			done := own.state == callDone
			c.mu.Unlock()
			if done {
				c.stepDown()
				return own.result()
			}
		} else if c.backgroundDone() {
			c.stepDown()
			return message{}, nil
		}
	}
}

// interrupt makes the leader's read return: its context ended. (It may
// come late, to a later leader, which then clears it and reads on.)
func (c *child) interrupt() { c.stdout.SetReadDeadline(time.Unix(1, 0)) }

// deliver hands a reply to its call, and a child's own call or cancel to
// childCalled. A reply no call waits for is a protocol error: deliver
// finishes the child and reports false. A call whose reply comes ends the
// child's calls to other modules made for it.
func (c *child) deliver(rep message, own *call) bool {
	c.received.Add(1)
	if rep.call != nil {
		return c.childCalled(rep)
	}
	c.mu.Lock()
	cl := c.pending[rep.id]
	if cl == nil {
		c.mu.Unlock()
		c.finish(protocolErrorf("a reply to request %d, which is not waiting for one", rep.id))
		return false
	}
	delete(c.pending, rep.id)
	if !cl.ping {
		c.inflight.Add(-1)
	}
	if cl.state != callAbandoned {
		cl.rep, cl.state = rep, callDone
		if cl != own {
			cl.signal()
		}
	}
	var orphans []context.CancelFunc
	if len(c.nested) > 0 {
		orphans = c.nestedOf(rep.id)
	}
	c.mu.Unlock()
	for _, cancel := range orphans {
		cancel() // the request ended: so do the calls made for it
	}
	return true
}

// backgroundDone reports whether a leader without a call of its own may
// stop: a caller waits (and will lead), or no reply is due any more.
func (c *child) backgroundDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone != nil {
		return true
	}
	for _, cl := range c.pending {
		if cl.state == callWaiting {
			return true
		}
	}
	return len(c.pending) == 0 && !c.ended
}

// stepDown gives up the reader role: to a waiting caller, or to a goroutine
// of its own while replies are due that no caller waits for.
func (c *child) stepDown() {
	c.mu.Lock()
	c.reading = false
	if c.gone != nil {
		c.mu.Unlock()
		return
	}
	for _, cl := range c.pending {
		if cl.state == callWaiting {
			cl.state = callPromoted
			cl.signal()
			c.reading = true
			c.mu.Unlock()
			return
		}
	}
	background := len(c.pending) > 0 || c.ended
	c.reading = background
	c.mu.Unlock()
	if background {
		go c.lead(context.Background(), nil)
	}
}

// finish ends the child after its reader stopped: it finds out why, fails
// every request in flight with that, and tells the instance.
func (c *child) finish(readErr error) {
	var pe *protocolError
	if errors.As(readErr, &pe) {
		c.kill(readErr.Error())
	}
	status := c.exitStatus(time.Second)
	c.mu.Lock()
	why := c.killMsg
	c.mu.Unlock()
	var cause error
	switch {
	case why != "":
		cause = fmt.Errorf("%s: its process (pid %d) was killed: %s", c.name(), c.pid, why)
	case readErr != nil && !errors.Is(readErr, io.EOF) && !errors.Is(readErr, os.ErrClosed):
		cause = fmt.Errorf("%s: reading from its process (pid %d): %v; it %s", c.name(), c.pid, readErr, status)
	default:
		cause = fmt.Errorf("%s: its process (pid %d) exited: %s%s", c.name(), c.pid, status, c.stderr.suffix())
	}
	c.fail(cause)
	c.stdout.Close()
}

// goneErr is why the child is finished, or nil.
func (c *child) goneErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// fail marks the child finished, fails what waits on it and closes its
// stdin. Only the first call counts.
func (c *child) fail(cause error) {
	c.mu.Lock()
	if c.gone != nil {
		c.mu.Unlock()
		return
	}
	c.gone = cause
	c.dead.Store(true)
	for id, cl := range c.pending {
		delete(c.pending, id)
		if cl.state == callAbandoned {
			continue
		}
		switch {
		case cl.ping:
			cl.err = cause
		case c.closing.Load():
			cl.err = &sdk.Error{Code: sdk.CodeNotActive, Message: fmt.Sprintf("%s was closed during the call", c.name())}
		default:
			cl.err = &sdk.Error{Code: sdk.CodePanic, Message: cause.Error() + " (during the call)"}
		}
		cl.state = callDone
		cl.signal()
	}
	c.inflight.Store(0)
	orphans := c.nestedOf(-1)
	inst := c.inst
	c.mu.Unlock()
	for _, cancel := range orphans {
		cancel()
	}
	close(c.done)
	c.w.close()
	if inst != nil {
		inst.childGone(c, cause)
	}
}

// roundTrip sends req and waits for its reply, or for ctx to end: then a
// call is cancelled in the child, and the child is killed if it does not
// answer within the grace period.
func (c *child) roundTrip(ctx context.Context, req request, ping bool) (message, error) {
	cl := getCall()
	cl.ping, cl.method = ping, req.method
	if !ping {
		cl.ctx = ctx
	}
	bp := bufs.Get().(*[]byte)
	req.id = c.nextID.Add(1)
	cl.id = req.id
	b, err := c.codec.appendRequest((*bp)[:0], req)
	if err != nil {
		bufs.Put(bp)
		cl.result()
		return message{}, err
	}
	c.mu.Lock()
	if c.gone != nil {
		c.mu.Unlock()
		bufs.Put(bp)
		cl.result()
		return message{}, errNotSent
	}
	c.pending[req.id] = cl
	if !ping {
		c.inflight.Add(1)
	}
	c.mu.Unlock()

	err = c.w.write(b)
	if cap(b) <= 64<<10 {
		*bp = b
		bufs.Put(bp)
	}
	if err != nil {
		// Nothing of the request was written: it never reached the child.
		c.mu.Lock()
		if c.pending[req.id] == cl {
			delete(c.pending, req.id)
			if !ping {
				c.inflight.Add(-1)
			}
			c.mu.Unlock()
			cl.result()
			if errors.Is(err, errStalled) {
				return message{}, &sdk.Error{Code: sdk.CodeTimeout, Message: fmt.Sprintf("%s: %v", c.name(), err)}
			}
			// Its stdin is closed: the child is dead or dying (or broken:
			// then it is killed, without a reason that would hide why it
			// died). Wait until it is finished, so that the call is not
			// routed to it again.
			c.killGroup()
			select {
			case <-c.done:
			case <-ctx.Done():
				return message{}, &sdk.Error{Code: sdk.CodeTimeout, Message: fmt.Sprintf("%s.%s: %v while its process was being replaced", c.name(), req.method, ctx.Err())}
			}
			return message{}, errNotSent
		}
		c.mu.Unlock() // the child failed meanwhile, and so did the call
	}
	return c.await(ctx, cl)
}

// abandon is what a caller whose context ended gets. A call is cancelled
// in the child, which is killed if the call is still running a grace
// period later.
func (c *child) abandon(ctx context.Context, cl *call) error {
	if cl.ping {
		return ctx.Err()
	}
	grace := c.inst.cfg.Grace
	bp := bufs.Get().(*[]byte)
	if b, err := c.codec.appendRequest((*bp)[:0], request{kind: kindCancel, id: cl.id}); err == nil {
		c.w.write(b)
		*bp = b
	}
	bufs.Put(bp)
	id, method := cl.id, cl.method
	time.AfterFunc(grace, func() {
		c.mu.Lock()
		still := c.pending[id] == cl
		c.mu.Unlock()
		if still {
			c.kill(fmt.Sprintf("it did not answer call %d (%s) within %s of its cancellation", id, method, grace))
		}
	})
	return &sdk.Error{Code: sdk.CodeTimeout,
		Message: fmt.Sprintf("%s.%s: %v; the call was cancelled in the module", c.name(), method, ctx.Err())}
}

// heartbeat pings the child whenever it has been idle for a period, and
// kills it when a ping goes unanswered for another. A child with calls in
// flight is not pinged: their deadlines govern it.
func (c *child) heartbeat(every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	seen := c.received.Load()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if n := c.received.Load(); n != seen || c.inflight.Load() > 0 {
			seen = n
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		_, err := c.roundTrip(ctx, request{kind: kindPing}, true)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			c.kill(fmt.Sprintf("it did not answer a heartbeat within %s", every))
			return
		}
		if err != nil {
			return // the child is gone
		}
		seen = c.received.Load()
	}
}

// shutdown closes the child: the close request (its OnClose hook runs),
// then the end of stdin, then, past the grace period, SIGKILL for its
// process group. It returns the close hook's error.
func (c *child) shutdown(grace time.Duration) error {
	c.closing.Store(true)
	deadline := time.Now().Add(grace)
	var hookErr error
	if !c.dead.Load() {
		ctx, cancel := context.WithDeadline(context.Background(), deadline)
		rep, err := c.roundTrip(ctx, request{kind: kindClose}, true)
		cancel()
		if err == nil && rep.err != nil {
			hookErr = rep.err
		}
	}
	c.w.close()
	select {
	case <-c.exited:
	case <-time.After(time.Until(deadline)):
		c.kill(fmt.Sprintf("it did not exit within %s of being closed", grace))
	}
	<-c.exited
	// A reader blocked on a pipe that a leftover grandchild still holds.
	c.stdout.Close()
	select {
	case <-c.done:
	case <-time.After(grace):
		c.fail(fmt.Errorf("%s: closed", c.name()))
	}
	return hookErr
}

// stderrTail logs a child's stderr, line by line, and keeps the last lines
// for error messages.
type stderrTail struct {
	done chan struct{} // closed when stderr ends

	mu    sync.Mutex
	lines []string
	first string // the first line that looks like a crash ("panic: …")
}

const tailLines = 20

func newStderrTail() *stderrTail { return &stderrTail{done: make(chan struct{})} }

func (c *child) pumpStderr(r *os.File, logger *slog.Logger) {
	defer close(c.stderr.done)
	defer r.Close()
	br := bufio.NewReaderSize(r, 16<<10)
	limit := logcap.New(logcap.Rate, logcap.Burst)
	attrs := []slog.Attr{slog.String("module", c.name()), slog.Int("pid", c.pid)}
	defer func() { limit.Flush(logger, attrs) }()
	for {
		line, isPrefix, err := br.ReadLine()
		if len(line) > 0 || (err == nil && !isPrefix) {
			s := strings.ToValidUTF8(string(line), "\uFFFD")
			c.stderr.add(s)
			module, version, _ := strings.Cut(c.name(), "@") // the artifact's name, no version, before the handshake
			limit.Log(logger, len(s), attrs, func() {
				logger.Info("process module stderr", "module", module, "version", version, "pid", c.pid, "line", s)
			})
		}
		if err != nil {
			return
		}
	}
}

func (t *stderrTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.first == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") || strings.HasPrefix(line, "Traceback ")) {
		t.first = line
	}
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, line)
}

// suffix is "; stderr: …" with the most telling lines, or "".
func (t *stderrTail) suffix() string {
	// Let the pump catch up with what an exiting process wrote last.
	select {
	case <-t.done:
	case <-time.After(50 * time.Millisecond):
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var pick []string
	if t.first != "" {
		pick = append(pick, t.first)
	}
	from := max(0, len(t.lines)-3)
	for _, l := range t.lines[from:] {
		if strings.TrimSpace(l) != "" && l != t.first {
			pick = append(pick, l)
		}
	}
	if len(pick) == 0 {
		return ""
	}
	return "; stderr: " + strings.Join(pick, " | ")
}

// pipeWriter writes whole requests to a child's stdin without ever making
// a caller wait for the child to read: a request that does not fit in the
// pipe is queued for a flushing goroutine.
type pipeWriter struct {
	f  *os.File
	rc syscall.RawConn
	op rawWrite // the write in progress (under mu), reused: no allocation a call

	mu       sync.Mutex
	queue    []byte
	flushing bool
	err      error
}

// maxQueued bounds what waits for a child that does not read its stdin.
const maxQueued = 64 << 20

// errStalled: the child has not read its requests for a while.
var errStalled = errors.New("the module's process is not reading its requests (64 MiB are waiting)")

func newPipeWriter(f *os.File) *pipeWriter {
	w := &pipeWriter{f: f}
	if rc, err := f.SyscallConn(); err == nil {
		w.rc = rc
	}
	return w
}

// write writes b, or queues what the pipe does not take now. An error means
// that nothing of b was written or queued.
func (w *pipeWriter) write(b []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if !w.flushing {
		n, err := w.op.try(w.rc, b)
		if err != nil && n == 0 && !wouldBlock(err) {
			w.err = err
			return err
		}
		if n == len(b) {
			return nil
		}
		w.queue = append(w.queue[:0], b[n:]...)
		w.flushing = true
		go w.flush()
		return nil
	}
	if len(w.queue)+len(b) > maxQueued {
		return errStalled
	}
	w.queue = append(w.queue, b...)
	return nil
}

func (w *pipeWriter) flush() {
	var buf []byte
	for {
		w.mu.Lock()
		if len(w.queue) == 0 || w.err != nil {
			w.flushing = false
			w.mu.Unlock()
			return
		}
		buf, w.queue = w.queue, buf[:0]
		w.mu.Unlock()
		if _, err := w.f.Write(buf); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.flushing = false
			w.mu.Unlock()
			return
		}
	}
}

// close closes the pipe: the child reads the end of its input.
func (w *pipeWriter) close() {
	w.mu.Lock()
	if w.err == nil {
		w.err = os.ErrClosed
	}
	w.mu.Unlock()
	w.f.Close()
}
