package process

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
)

// Calls from a child to other modules (protocol version 2). A method that
// calls sdk.Call sends a "call" message tagged with the id of the host's
// request it runs for (its parent). The host runs the call through the
// sdk.Host that Instance.Init's context carried, on a goroutine of its own
// (the reader role never waits for it), within a context derived from the
// parent's: its deadline and values (the call chain the registry keeps)
// carry over, and it ends when the parent's does, when the parent's reply
// comes, when the child dies, or when the child cancels it. Each call gets
// exactly one reply, unless the child is gone; a call the child cancels
// gets it at once (code timeout), whatever the host's handle does: a child
// may be blocked reading its stdin until then.

// nestedCall is a child's call to another module, in flight.
type nestedCall struct {
	parent int64 // the host's request it was made for
	cancel context.CancelFunc
	cc     *childCall
}

// childCalled serves a child's call or cancel. It never blocks on the call:
// the call runs on a goroutine of its own. It reports false when the message
// broke the protocol: the child is finished.
func (c *child) childCalled(msg message) bool {
	cc := msg.call
	if cc.kind == kindCancel {
		c.mu.Lock()
		n := c.nested[msg.id]
		delete(c.nested, msg.id) // answered here, not by runNested
		c.mu.Unlock()
		if n != nil {
			n.cancel()
			c.replyToChild(msg.id, n.cc, nil, sdk.Errorf(sdk.CodeTimeout, "%s.%s: the call was cancelled by %s", n.cc.target, n.cc.method, c.name()))
		}
		return true // a call that ended already: its reply is on its way
	}
	c.mu.Lock()
	if _, dup := c.nested[msg.id]; dup {
		c.mu.Unlock()
		c.finish(protocolErrorf("call %d from the child while its call %d is in flight (a child must not reuse an id)", msg.id, msg.id))
		return false
	}
	parent := c.pending[cc.parent]
	var refusal *sdk.Error
	switch {
	case parent == nil || parent.ping || parent.state == callAbandoned:
		refusal = sdk.Errorf(sdk.CodeTimeout, "%s: its call %s.%s was made for request %d, which is not in flight (it has ended, or never was): "+
			"a module calls other modules only while the method or hook whose context it passes runs", c.name(), cc.target, cc.method, cc.parent)
	case len(c.nested) >= c.inst.cfg.MaxNestedCalls:
		refusal = sdk.Errorf(sdk.CodeOverloaded, "%s: its call %s.%s would be its call number %d in flight to other modules; a process module may have %d (Config.MaxNestedCalls)",
			c.name(), cc.target, cc.method, len(c.nested)+1, c.inst.cfg.MaxNestedCalls)
	}
	if refusal != nil {
		c.mu.Unlock()
		c.replyToChild(msg.id, cc, nil, refusal)
		return true
	}
	var ctx context.Context
	var cancel context.CancelFunc
	if cc.timeout > 0 {
		ctx, cancel = context.WithTimeout(parent.ctx, cc.timeout)
	} else {
		ctx, cancel = context.WithCancel(parent.ctx)
	}
	c.nested[msg.id] = &nestedCall{parent: cc.parent, cancel: cancel, cc: cc}
	c.mu.Unlock()
	go c.runNested(ctx, msg.id, cc)
	return true
}

// nestedOf returns the cancel functions of the calls in flight made for the
// request parent (-1: of all of them), for the caller to call once it has
// unlocked c.mu, which must be held. The calls stay in flight until their
// goroutines have replied.
func (c *child) nestedOf(parent int64) []context.CancelFunc {
	var cancels []context.CancelFunc
	for _, n := range c.nested {
		if parent < 0 || n.parent == parent {
			cancels = append(cancels, n.cancel)
		}
	}
	return cancels
}

// runNested makes a child's call through the instance's host and replies,
// unless the child cancelled the call meanwhile (it had its reply then).
func (c *child) runNested(ctx context.Context, id int64, cc *childCall) {
	res, err := c.invokeHost(ctx, cc)
	c.mu.Lock()
	n := c.nested[id]
	delete(c.nested, id)
	c.mu.Unlock()
	if n == nil {
		return
	}
	n.cancel()
	c.replyToChild(id, cc, res, err)
}

func (c *child) invokeHost(ctx context.Context, cc *childCall) (res map[string]any, err error) {
	h := c.inst.host.Host()
	if h == nil {
		return nil, chain.NoHost(c.inst.manifest, cc.target, cc.method)
	}
	defer func() {
		if r := recover(); r != nil {
			c.inst.log.Error("the host's handle panicked during a call from a process module",
				"target", cc.target, "method", cc.method, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			res, err = nil, sdk.Errorf(sdk.CodePanic, "%s.%s (called by %s) panicked: %v", cc.target, cc.method, c.name(), r)
		}
	}()
	return h.Invoke(ctx, cc.target, cc.method, cc.params)
}

// maxErrorMessage bounds the message of an error sent to a child.
const maxErrorMessage = 64 << 10

// replyToChild writes the reply to the child's call id. A write that fails
// means that the child is gone, and its call with it.
func (c *child) replyToChild(id int64, cc *childCall, res map[string]any, err error) {
	var e *sdk.Error
	if err != nil {
		if e = sdk.AsError(err); len(e.Message) > maxErrorMessage {
			e = &sdk.Error{Code: e.Code, Message: e.Message[:maxErrorMessage] + "…"}
		}
	}
	bp := bufs.Get().(*[]byte)
	b, aerr := c.codec.appendReply((*bp)[:0], id, res, e)
	if aerr != nil { // the result cannot be sent: say why instead
		e = sdk.Errorf(sdk.CodeModule, "%s.%s returned a result that cannot be sent to %s: %s", cc.target, cc.method, c.name(), sdk.AsError(aerr).Message)
		b, aerr = c.codec.appendReply((*bp)[:0], id, nil, e)
	}
	if aerr != nil {
		bufs.Put(bp)
		return
	}
	c.w.write(b)
	if cap(b) <= 64<<10 {
		*bp = b[:0]
		bufs.Put(bp)
	}
}
