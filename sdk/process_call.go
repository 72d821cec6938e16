package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/wire"
)

// Calls from a module in a child process to other modules (process protocol
// version 2; see docs/process-protocol.md). Call, in a method or hook, finds
// the request's host in its context (withRequestHost, set by handle): it
// sends the host a "call" with an id of the child's own and the id of the
// request it runs for, and waits for the host's "result" or "error" with
// that id, or for its context to end (then it sends "cancel").

// setVersion sets up calls to other modules for the version picked.
func (s *processServer) setVersion(v int) {
	s.version = v
	switch {
	case v < 2:
		s.base = withRequestHost(context.Background(), unreachableHost{CodeIncompatible, fmt.Sprintf(
			"this module and its host speak process protocol version %d, which has no calls to other modules: load the module with a host that offers version 2", v)})
	case len(s.m.requires) == 0:
		s.base = withRequestHost(context.Background(), unreachableHost{CodeUndeclared, fmt.Sprintf(
			"module %s@%s declared no requirements: declare the modules it calls with Requires (or RequiresCapability)", s.m.name, s.m.version)})
	default:
		s.calls = map[int64]chan hostReply{}
	}
}

// unreachableHost is the Host of a module that cannot call other modules:
// it says why.
type unreachableHost struct {
	code Code
	why  string
}

func (u unreachableHost) Invoke(_ context.Context, target, method string, _ map[string]any) (map[string]any, error) {
	return nil, Errorf(u.code, "calling %s.%s: %s", target, method, u.why)
}

// requestHost is the Host of one request of the host's: calls made with its
// context go back over the pipe, tagged with the request's id.
type requestHost struct {
	s        *processServer
	parent   int64     // the host's request
	r        *reader   // the reader that runs the request inline, or nil
	deadline time.Time // the request's deadline; zero for none
}

// hostReply is the host's reply to a call of the module's. result aliases
// the frame bp, which the receiver puts back.
type hostReply struct {
	bp     *[]byte
	result []byte // CBOR; nil for none
	err    *wire.ErrorBody
}

// Invoke sends the call to the host and waits for its reply.
func (h *requestHost) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	s := h.s
	if err := ctx.Err(); err != nil {
		return nil, Errorf(CodeTimeout, "calling %s.%s: %v", target, method, err)
	}
	// The request's deadline travels with the call on the host's side;
	// only a nearer one that the method set is sent.
	var timeout time.Duration
	if d, ok := ctx.Deadline(); ok && (h.deadline.IsZero() || d.Before(h.deadline)) {
		if timeout = time.Until(d); timeout <= 0 {
			return nil, Errorf(CodeTimeout, "calling %s.%s: %v", target, method, context.DeadlineExceeded)
		}
	}

	s.mu.Lock()
	s.nextCall++
	id := s.nextCall
	s.mu.Unlock()
	bp := frames.Get().(*[]byte)
	b, err := appendHostCall((*bp)[:0], id, h.parent, target, method, params, timeout)
	if err != nil {
		putFrame(bp)
		return nil, err
	}
	*bp = b
	ch := make(chan hostReply, 1)
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		putFrame(bp)
		return nil, Errorf(CodeInternal, "calling %s.%s: the module is shutting down", target, method)
	}
	s.calls[id] = ch
	s.mu.Unlock()
	// A request that runs on the reader's goroutine keeps the reader role
	// while its call waits: it reads the host's reply itself (serving what
	// comes meanwhile), so that the reply costs no goroutine switch.
	inline := h.r != nil && h.r.role.CompareAndSwap(roleInline, roleAwaiting)
	werr := s.write(b)
	putFrame(bp)
	var out map[string]any
	switch {
	case werr != nil:
		s.forget(id)
		err = Errorf(CodeInternal, "calling %s.%s: the host is gone: %v", target, method, werr)
	case inline:
		out, err = s.awaitReading(ctx, id, ch, target, method)
	default:
		out, err = s.await(ctx, id, ch, target, method)
	}
	if inline {
		h.r.inline()
	}
	return out, err
}

// await waits for the reply to call id while another goroutine reads.
func (s *processServer) await(ctx context.Context, id int64, ch chan hostReply, target, method string) (map[string]any, error) {
	select {
	case rep := <-ch:
		return rep.decode(ctx, target, method)
	case <-ctx.Done():
	}
	if !s.forget(id) { // the reply came meanwhile
		rep := <-ch
		return rep.decode(ctx, target, method)
	}
	s.cancelCall(id)
	return nil, Errorf(CodeTimeout, "calling %s.%s: %v", target, method, ctx.Err())
}

// awaitReading waits for the reply to call id, holding the reader role: it
// serves the requests that come meanwhile, but runs calls on workers. When
// ctx ends, the call is cancelled with the host, whose answer (the host
// answers a cancel at once) ends the read this goroutine may be blocked in.
func (s *processServer) awaitReading(ctx context.Context, id int64, ch chan hostReply, target, method string) (map[string]any, error) {
	stop := context.AfterFunc(ctx, func() { s.cancelCall(id) })
	defer stop()
	for {
		select {
		case rep := <-ch:
			return rep.decode(ctx, target, method)
		default:
		}
		if ctx.Err() != nil { // the host cancelled the request, say
			if !s.forget(id) {
				rep := <-ch
				return rep.decode(ctx, target, method)
			}
			return nil, Errorf(CodeTimeout, "calling %s.%s: %v", target, method, ctx.Err())
		}
		if _, _, _, ended := s.next(false); ended {
			if !s.forget(id) {
				rep := <-ch
				return rep.decode(ctx, target, method)
			}
			return nil, Errorf(CodeInternal, "calling %s.%s: the module stopped serving (its host closed it, or went away)", target, method)
		}
	}
}

// forget stops waiting for call id, and reports whether it was waited for.
func (s *processServer) forget(id int64) bool {
	s.mu.Lock()
	_, ok := s.calls[id]
	delete(s.calls, id)
	s.mu.Unlock()
	return ok
}

// cancelCall tells the host that the module gave up call id.
func (s *processServer) cancelCall(id int64) {
	b, _ := wire.Append(make([]byte, 0, 32), wire.CBOR, &wire.Message{Kind: wire.Cancel, ID: id})
	s.write(b)
}

// appendHostCall appends the frame of a call.
func appendHostCall(b []byte, id, parent int64, target, method string, params map[string]any, timeout time.Duration) ([]byte, error) {
	pp := frames.Get().(*[]byte)
	defer putFrame(pp)
	raw, err := cbor.Append((*pp)[:0], params)
	if err != nil {
		var ee *cbor.EncodeError
		if errors.As(err, &ee) {
			return nil, Errorf(CodeBadParams, "calling %s.%s: params%s: %s", target, method, strings.TrimPrefix(ee.Path, "value"), ee.Msg)
		}
		return nil, Errorf(CodeBadParams, "calling %s.%s: %v", target, method, err)
	}
	*pp = raw
	b, err = wire.Append(b, wire.CBOR, &wire.Message{Kind: wire.Call, ID: id, Parent: parent, HasParent: true,
		Target: target, Method: method, Params: raw, Timeout: timeout})
	if err != nil {
		return nil, Errorf(CodeBadParams, "calling %s.%s: %v", target, method, err)
	}
	return b, nil
}

// deliver hands the host's reply to the call waiting for it; a reply to a
// call the module gave up is dropped. It takes bp.
func (s *processServer) deliver(req request, bp *[]byte) {
	s.mu.Lock()
	ch := s.calls[req.ID]
	delete(s.calls, req.ID)
	s.mu.Unlock()
	if ch == nil {
		putFrame(bp)
		return
	}
	ch <- hostReply{bp: bp, result: req.Result, err: req.Err}
}

// decode returns the reply's result or error, and puts its frame back. The
// host's answer to a cancellation is told as the call's context ended.
func (r hostReply) decode(ctx context.Context, target, method string) (map[string]any, error) {
	defer putFrame(r.bp)
	if r.err != nil {
		code := Code(r.err.Code)
		if code == "" {
			code = CodeModule
		}
		if err := ctx.Err(); err != nil && code == CodeTimeout {
			return nil, Errorf(CodeTimeout, "calling %s.%s: %v", target, method, err)
		}
		return nil, &Error{Code: code, Message: r.err.Message}
	}
	if len(r.result) == 0 { // none, or null
		return map[string]any{}, nil
	}
	out, err := cbor.UnmarshalMap(r.result)
	if err != nil {
		return nil, Errorf(CodeInternal, "calling %s.%s: the host's reply holds a result that is %s", target, method, cborProblem(err))
	}
	return out, nil
}
