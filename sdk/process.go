package sdk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/wire"
)

// The child side of the process transport. The protocol is written down in
// docs/process-protocol.md at the root of the repository; in short:
//
//  1. The host starts the module's executable with HOTMOD_PROCESS=1, the
//     protocol versions it offers (HOTMOD_PROCESS_VERSIONS, "1-2") and the
//     encodings it accepts (HOTMOD_PROCESS_ENCODINGS, "cbor,json").
//  2. The child writes one line of JSON on stdout, the hello: the version and
//     encoding it picked and its manifest (or an error, and exits).
//  3. Then requests come in on stdin and replies go out on stdout, each a
//     CBOR map in a frame (a 4-byte big-endian length, then the map). Every
//     request carries an id; calls run concurrently and replies may come in
//     any order.
//  4. In version 2, the child makes requests of its own: a method that
//     calls Call sends a "call" tagged with the id of the host's request it
//     runs for, and the host replies with the callee's result or error (see
//     process_call.go).
//
// This SDK speaks versions 1 and 2 with the CBOR encoding, and picks the
// highest the host offers. A Go module needs none of this: sdk.Main serves
// the protocol when HOTMOD_PROCESS is set. The messages and their framing
// are package wire's, which the host uses too.

// Names and numbers of the protocol (see docs/process-protocol.md).
const (
	processEnv          = wire.EnvProcess
	processVersionsEnv  = wire.EnvVersions
	processEncodingsEnv = wire.EnvEncodings
	processMinVersion   = 1 // the versions this SDK speaks
	processVersion      = 2
	processMaxFrame     = wire.MaxFrame
)

// serveProcess serves m on the process's stdin and stdout until the host
// closes the module or goes away, and returns the exit code. The module's
// own writes to os.Stdout go to stderr instead (the host logs them), and it
// reads an empty os.Stdin: the real ones carry the protocol.
func serveProcess(m *Module) int {
	in, out := os.Stdin, os.Stdout
	os.Stdout = os.Stderr
	if null, err := os.Open(os.DevNull); err == nil {
		os.Stdin = null
	}
	return newProcessServer(m, in, out, os.Stderr, os.Getenv).serve()
}

// processServer is one child's end of the protocol.
type processServer struct {
	m      *Module
	in     *wire.Reader
	out    io.Writer
	stderr io.Writer
	getenv func(string) string

	version int // the protocol version picked in the hello
	// base is the context requests derive from. When the module cannot
	// call other modules (version 1, or no requirements), it carries a
	// Host that says why; otherwise each request gets a Host of its own.
	base context.Context

	// Used by the goroutine that holds the reader role (see reader).
	dec wire.Decoder

	wmu sync.Mutex // whole frames go out one at a time

	mu       sync.Mutex
	running  map[int64]*callCtx       // calls in flight, by id
	calls    map[int64]chan hostReply // the module's calls to other modules waiting for their replies, by id; nil if it makes none
	nextCall int64                    // the id of the last such call
	ended    bool
	exit     chan int // the exit code, once

	closeOnce sync.Once

	jobs chan job // idle workers wait here
	idle atomic.Int32
}

func newProcessServer(m *Module, in io.Reader, out, stderr io.Writer, getenv func(string) string) *processServer {
	s := &processServer{
		m: m, in: wire.NewReader(bufio.NewReaderSize(in, 64<<10), wire.CBOR, "stdin"), out: out, stderr: stderr, getenv: getenv,
		dec:     wire.Decoder{Encoding: wire.CBOR, Names: make(map[string]string, len(m.methods))},
		running: map[int64]*callCtx{},
		base:    context.Background(),
		exit:    make(chan int, 1),
		jobs:    make(chan job),
	}
	for name := range m.methods { // method names: no string allocated to read them
		s.dec.Names[name] = name
	}
	return s
}

// serve says hello, then serves requests until the host closes the module
// (exit code 0), closes stdin (0) or breaks the protocol (1).
func (s *processServer) serve() int {
	if err := s.hello(); err != nil {
		s.logf("%v", err)
		return 1
	}
	go s.readLoop()
	return <-s.exit
}

// hello negotiates the version and encoding and writes the handshake line.
func (s *processServer) hello() error {
	var h wire.Hello
	version, err := pickProcessVersion(s.getenv(processVersionsEnv))
	if err == nil {
		err = checkProcessEncoding(s.getenv(processEncodingsEnv))
	}
	if err == nil {
		err = s.m.Validate()
	}
	if err == nil {
		man, merr := json.Marshal(s.m.Manifest())
		if merr != nil {
			return fmt.Errorf("hotmod: encoding the manifest: %v", merr)
		}
		h.Version, h.Encoding, h.Manifest = version, wire.CBOR, man
		s.setVersion(version)
	} else {
		h.Error = fmt.Sprintf("%s@%s: %v", s.m.name, s.m.version, err)
	}
	line, merr := wire.AppendHello(nil, h)
	if merr != nil {
		return fmt.Errorf("hotmod: %v", merr)
	}
	if _, werr := s.out.Write(line); werr != nil {
		return fmt.Errorf("hotmod: writing the handshake: %v", werr)
	}
	if err != nil {
		return errors.New(h.Error)
	}
	return nil
}

// pickProcessVersion picks the version to speak from the host's offer,
// "LOW-HIGH" or "N" ("" offers version 1): the highest that this SDK speaks.
func pickProcessVersion(offer string) (int, error) {
	l, h, err := wire.ParseVersions(offer)
	if err != nil {
		return 0, err
	}
	if l > processVersion || h < processMinVersion {
		return 0, fmt.Errorf("the host offers process protocol versions %d-%d; this module's sdk %s speaks versions %d-%d: rebuild it with an sdk that matches the host",
			l, h, Version, processMinVersion, processVersion)
	}
	return min(h, processVersion), nil
}

// checkProcessEncoding checks that the host accepts CBOR ("" means it does).
func checkProcessEncoding(offer string) error {
	for _, e := range wire.ParseEncodings(offer) {
		if e == wire.CBOR {
			return nil
		}
	}
	return fmt.Errorf("the host accepts the encodings %q; a Go module speaks cbor (is its launch file's \"protocol\" wrong?)", offer)
}

func (s *processServer) logf(format string, args ...any) {
	fmt.Fprintf(s.stderr, "hotmod: "+format+"\n", args...)
}

// end stops serving with an exit code (the first one wins).
func (s *processServer) end(code int) {
	s.mu.Lock()
	first := !s.ended
	s.ended = true
	running := make([]*callCtx, 0, len(s.running))
	for _, c := range s.running {
		running = append(running, c)
	}
	s.mu.Unlock()
	if !first {
		return
	}
	for _, c := range running {
		c.cancel(context.Canceled)
	}
	s.exit <- code
}

// request is one decoded message from the host (a wire.Message): its Raw
// values alias the frame it came in.
type request = wire.Message

// frames are buffers for requests and replies.
var frames = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putFrame(bp *[]byte) {
	if cap(*bp) <= 64<<10 { // do not keep the odd huge frame alive
		frames.Put(bp)
	}
}

// The reader role. Exactly one goroutine at a time reads stdin. It runs a
// call (or a hook) itself when nothing else is waiting to be read, so that
// a call's reply costs no goroutine switch and no new goroutine; should the
// call run for longer than handOffAfter (up to twice that), a timer gives
// the role to a new goroutine, and the old one exits when its call is done.
// When more requests are already buffered, each call gets a goroutine of
// its own at once, so that calls run in parallel.
//
// The timer is not set for every call: arming a timer wakes another thread
// of the runtime (to watch the new deadline), which costs more than the
// call. It is armed when a call begins inline and none is pending, and at
// each expiry it hands off a call that was running at the previous one, or
// rearms while calls run, or stays disarmed until the next call.
const handOffAfter = 100 * time.Microsecond

// The states of a reader goroutine.
const (
	roleReading   = iota // reading requests
	roleInline           // running a call inline
	roleHandedOff        // its call took too long: another goroutine reads now
	roleAwaiting         // its call waits for the host's reply to a call of its own, and reads meanwhile (process_call.go)
)

// reader is one goroutine's hold on the reader role.
type reader struct {
	s     *processServer
	role  atomic.Int32
	calls atomic.Uint64 // calls begun inline (or resumed after awaiting)
	armed atomic.Bool   // watch is pending
	seen  atomic.Uint64 // calls when watch was armed or last fired
	watch *time.Timer   // tick, while calls run inline
}

func (s *processServer) readLoop() {
	r := &reader{s: s}
	r.watch = time.AfterFunc(time.Hour, r.tick)
	r.watch.Stop()
	r.run()
}

// inline marks the start of a call that runs on the reader's goroutine.
func (r *reader) inline() {
	r.calls.Add(1)
	r.role.Store(roleInline)
	r.arm()
}

// arm sets the timer unless it is pending.
func (r *reader) arm() {
	if r.armed.CompareAndSwap(false, true) {
		r.seen.Store(r.calls.Load())
		r.watch.Reset(handOffAfter)
	}
}

// tick: a period has passed since the timer was armed. The call running
// inline since then (no call began meanwhile) gets a new goroutine to read
// in its place.
func (r *reader) tick() {
	n := r.calls.Load()
	if n == r.seen.Load() && r.role.CompareAndSwap(roleInline, roleHandedOff) {
		r.armed.Store(false)
		go r.s.readLoop()
		return
	}
	r.seen.Store(n)
	if r.role.Load() == roleInline {
		r.watch.Reset(handOffAfter) // another call runs: watch it
		return
	}
	r.armed.Store(false)
	if r.role.Load() == roleInline { // one began meanwhile, and saw the timer armed
		r.arm()
	}
}

func (r *reader) run() {
	s := r.s
	for {
		req, bp, run, stop := s.next(true)
		if stop {
			return
		}
		if !run {
			continue
		}
		r.inline()
		s.handle(req, r)
		putFrame(bp)
		if !r.role.CompareAndSwap(roleInline, roleReading) {
			return // handed off: another goroutine reads now
		}
	}
}

// next reads the next request and serves it, but for a call, init or check
// that the reading goroutine may run itself (mayRun, and no other request
// is waiting to be read): that one it returns, with its frame, and run set.
// stop reports that serving has ended.
func (s *processServer) next(mayRun bool) (req request, bp *[]byte, run, stop bool) {
	bp, err := s.readFrame()
	if err != nil {
		if errors.Is(err, io.EOF) {
			// The host closed stdin: it is gone, or done with us.
			s.closeHook()
			s.end(0)
			return request{}, nil, false, true
		}
		s.logf("%v", err)
		s.end(1)
		return request{}, nil, false, true
	}
	req, err = s.dec.DecodeCBOR(*bp)
	if err != nil {
		s.logf("%v", err)
		putFrame(bp)
		s.end(1)
		return request{}, nil, false, true
	}
	switch req.Kind {
	case wire.Cancel:
		s.mu.Lock()
		call := s.running[req.ID]
		s.mu.Unlock()
		if call != nil {
			call.cancel(context.Canceled)
		}
		putFrame(bp)
	case wire.Ping:
		putFrame(bp)
		s.reply(req.ID, nil, nil)
	case wire.Result, wire.Error:
		if s.version >= 2 {
			s.deliver(req, bp) // the reply to a call of the module's: bp goes with it
			break
		}
		putFrame(bp)
		s.reply(req.ID, nil, Errorf(CodeInternal, "unknown message type %q: this module speaks process protocol version %d with this host", req.Kind, s.version))
	case wire.Unknown:
		putFrame(bp)
		if req.HasID {
			s.reply(req.ID, nil, Errorf(CodeInternal, "unknown message type %q: this module speaks process protocol version %d with this host (its sdk %s speaks versions %d-%d)",
				req.Type, s.version, Version, processMinVersion, processVersion))
		}
	case wire.Close:
		putFrame(bp)
		err := s.closeHook()
		s.reply(req.ID, nil, err)
		s.end(0)
		return request{}, nil, false, true
	default: // a call, init or check
		if !mayRun || s.in.Buffered() > 0 {
			// Run it alongside: more requests are waiting, or this
			// goroutine waits for something else.
			s.dispatch(req, bp)
			break
		}
		return req, bp, true, false
	}
	return request{}, nil, false, false
}

// job is a request for a worker.
type job struct {
	req request
	bp  *[]byte
}

// maxIdleWorkers bounds the workers kept waiting for calls.
const maxIdleWorkers = 64

// dispatch runs a request on an idle worker, or on a new one. Workers are
// kept because a new goroutine's stack grows on every call.
func (s *processServer) dispatch(req request, bp *[]byte) {
	select {
	case s.jobs <- job{req, bp}:
	default:
		go s.worker(job{req, bp})
	}
}

func (s *processServer) worker(j job) {
	for {
		s.handle(j.req, nil)
		putFrame(j.bp)
		if s.idle.Add(1) > maxIdleWorkers {
			s.idle.Add(-1)
			return
		}
		j = <-s.jobs
		s.idle.Add(-1)
	}
}

// readFrame reads one frame into a pooled buffer of its own: a request
// run on a worker keeps it while the reader reads on.
func (s *processServer) readFrame() (*[]byte, error) {
	body, err := s.in.Next()
	if err != nil {
		return nil, err
	}
	bp := frames.Get().(*[]byte)
	*bp = append((*bp)[:0], body...)
	return bp, nil
}

// handle runs a call, an init or a check, and replies. r is the reader
// that runs it inline, or nil.
func (s *processServer) handle(req request, r *reader) {
	// Not derived from a cancelable context of the server's: that would
	// cost an entry in its set of children on every call, under a lock all
	// calls share. end cancels what runs through s.running instead.
	call := s.newCallCtx(&req, r)
	var ctx context.Context = call
	s.mu.Lock()
	s.running[req.ID] = call
	s.mu.Unlock()

	var result []byte
	var err error
	switch req.Kind {
	case wire.Call:
		params := []byte(req.Params)
		if params == nil {
			params = emptyMap
		}
		result, err = s.invoke(ctx, req.Method, params)
	case wire.Init:
		err = s.initHook(ctx, req.Config)
	case wire.Check:
		err = s.hook("OnCheck", func() error { return s.m.Check(ctx) })
	}

	s.mu.Lock()
	delete(s.running, req.ID)
	s.mu.Unlock()
	call.cancel(context.Canceled)
	s.reply(req.ID, result, err)
}

// invoke calls a method; a panic becomes an error with code panic and its
// stack goes to stderr, as the native transport logs it.
func (s *processServer) invoke(ctx context.Context, method string, params []byte) (res []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			res, err = nil, s.panicked(s.m.name+"."+method, r)
		}
	}()
	return s.m.InvokeCBOR(ctx, method, params)
}

// emptyMap is the CBOR of {}: a call's params when the host sent none.
var emptyMap = []byte{0xa0}

func (s *processServer) initHook(ctx context.Context, raw []byte) error {
	var config map[string]any
	if len(raw) > 0 { // nil: null
		var err error
		if config, err = cbor.UnmarshalMap(raw); err != nil {
			return Errorf(CodeBadParams, "the module's configuration is %s", cborProblem(err))
		}
	}
	return s.hook("OnInit", func() error { return s.m.Init(ctx, config) })
}

// closeHook runs OnClose once.
func (s *processServer) closeHook() error {
	var err error
	s.closeOnce.Do(func() { err = s.hook("OnClose", s.m.Close) })
	return err
}

func (s *processServer) hook(name string, f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = s.panicked(s.m.name+"'s "+name+" hook", r)
		}
	}()
	return f()
}

func (s *processServer) panicked(where string, r any) error {
	s.logf("%s panicked: %v\n%s", where, r, debug.Stack())
	return Errorf(CodePanic, "%s panicked: %v", where, r)
}

// reply writes the reply to request id: a result (raw CBOR, nil for none)
// or an error.
func (s *processServer) reply(id int64, result []byte, err error) {
	if err == nil && len(result) > processMaxFrame-64 {
		err = Errorf(CodeModule, "the result of %d bytes is over the process protocol's frame limit of %d bytes", len(result), processMaxFrame)
	}
	msg := wire.Message{Kind: wire.Result, ID: id, Result: result}
	if err != nil {
		e := AsError(err)
		msg = wire.Message{Kind: wire.Error, ID: id, Err: &wire.ErrorBody{Code: string(e.Code), Message: e.Message}}
	}
	bp := frames.Get().(*[]byte)
	b, aerr := wire.Append((*bp)[:0], wire.CBOR, &msg)
	if aerr != nil { // over the limit: cannot be, with the result's checked
		b, _ = wire.Append((*bp)[:0], wire.CBOR, &wire.Message{Kind: wire.Error, ID: id, Err: &wire.ErrorBody{Code: string(CodeInternal), Message: aerr.Error()}})
	}
	s.write(b)
	*bp = b
	putFrame(bp)
}

// write writes a whole frame. An error means that the host is gone: the
// server ends.
func (s *processServer) write(frame []byte) error {
	s.wmu.Lock()
	_, err := s.out.Write(frame)
	s.wmu.Unlock()
	if err != nil {
		s.end(1)
	}
	return err
}
