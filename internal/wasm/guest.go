package wasm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"
)

// The ABI (docs/wasm-abi.md): export names, the version this host speaks,
// and the bits of a packed reply.
const (
	abiMajor = 1
	abiMinor = 1

	exportABI      = "hotmod_abi"
	exportBuffer   = "hotmod_buffer"
	exportAbout    = "hotmod_about"
	exportManifest = "hotmod_manifest"
	exportCall     = "hotmod_call"
	exportInit     = "hotmod_init"
	exportCheck    = "hotmod_check"
	exportClose    = "hotmod_close"

	replyDiscard = uint64(1) << 62
	replyError   = uint64(1) << 63
	replyLenMask = uint64(1)<<30 - 1

	// initialBuffer is the request buffer a guest is asked for when it
	// starts; larger requests grow it.
	initialBuffer = 16 << 10
	// maxRequest bounds method name plus params: the codec's own limit.
	maxRequest = 16 << 20
)

// requiredExports are the functions every guest of ABI 1 exports.
var requiredExports = []string{exportABI, exportBuffer, exportAbout, exportManifest, exportCall, exportInit, exportCheck, exportClose}

// guest is one instance of a module version's code: a Go runtime with its
// own heap. It is not safe for concurrent use; the pool hands it to one
// caller at a time.
type guest struct {
	mod                                                     api.Module
	mem                                                     api.Memory
	call, buffer, initFn, check, closeFn, about, man, abiFn api.Function

	bufPtr, bufCap uint32
	stack          [2]uint64
	scratch        []byte // the host's encoding buffer for requests

	stdout, stderr *output
	initGen        uint64        // the Init generation this guest has run
	memSize        uint32        // the size of mem, as counted in Instance.memory
	closed         bool          // discarded, or OnClose ran
	running        chan struct{} // the loader's running slots, while g holds one (trusted tier)

	// Calls to other modules (call.go). owner is the version the guest
	// belongs to, name its module's name in the runtime (the key of
	// Loader.callers), reply the reply of its last call_module until
	// take_reply copies it.
	owner      *Instance
	name       string
	reply      []byte
	replyReady bool
}

// startGuest instantiates i's compiled code with cfg (the start function
// runs the guest's package initialisation) and looks up the ABI's exports.
// The guest is known to the loader's callers by its name from the start, so
// that a call to another module during its initialisation gets an answer.
func startGuest(ctx context.Context, i *Instance, cfg wazero.ModuleConfig) (*guest, error) {
	l := i.l
	g := &guest{
		owner:  i,
		name:   l.guestName(),
		stdout: newOutput(l.logger, "stdout", slog.LevelInfo, false, i.outputLimit, i.attrs...),
		stderr: newOutput(l.logger, "stderr", slog.LevelWarn, true, i.outputLimit, i.attrs...),
	}
	l.callers.Store(g.name, g)
	mod, err := i.eng.rt.InstantiateModule(ctx, i.compiled, cfg.WithName(g.name).WithStdout(g.stdout).WithStderr(g.stderr))
	g.flush()
	if err != nil {
		l.callers.Delete(g.name)
		return nil, g.startError(ctx, err)
	}
	g.mod, g.mem = mod, mod.Memory()
	if g.mem == nil {
		g.discard()
		return nil, errors.New("it exports no memory")
	}
	g.measure()
	g.call = mod.ExportedFunction(exportCall)
	g.buffer = mod.ExportedFunction(exportBuffer)
	g.initFn = mod.ExportedFunction(exportInit)
	g.check = mod.ExportedFunction(exportCheck)
	g.closeFn = mod.ExportedFunction(exportClose)
	g.about = mod.ExportedFunction(exportAbout)
	g.man = mod.ExportedFunction(exportManifest)
	g.abiFn = mod.ExportedFunction(exportABI)
	return g, nil
}

// startError words a failed instantiation.
func (g *guest) startError(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return fmt.Errorf("its initialisation did not finish in time (%v)", context.Cause(ctx))
		}
		return fmt.Errorf("its initialisation exited with code %d%s", exit.ExitCode(), g.said())
	}
	msg := firstLine(err.Error())
	if _, after, ok := strings.Cut(msg, "failed: "); ok && strings.HasPrefix(msg, "module[") {
		msg = after // "module[] function[_initialize] failed: wasm error: unreachable"
	}
	return fmt.Errorf("its initialisation failed (%s)%s", msg, g.said())
}

// said is "; the guest said: <what explains a crash>", or "".
func (g *guest) said() string {
	if t := g.stderr.headline(); t != "" {
		return "; the guest said: " + t
	}
	return ""
}

// abi returns the ABI version the guest speaks.
func (g *guest) abi(ctx context.Context) (major, minor uint32, err error) {
	g.stack[0] = 0
	if err := g.abiFn.CallWithStack(ctx, g.stack[:]); err != nil {
		return 0, 0, err
	}
	v := uint32(g.stack[0])
	return v >> 16, v & 0xffff, nil
}

// invoke runs fn with args and returns the reply: a view of guest memory,
// valid until the guest runs again, and its flags. A failure of the call
// itself (a trap, an exit, an interruption) is a *crash.
func (g *guest) invoke(ctx context.Context, fn api.Function, args ...uint64) (reply []byte, flags uint64, err error) {
	g.stack = [2]uint64{}
	copy(g.stack[:], args)
	err = fn.CallWithStack(ctx, g.stack[:])
	g.flush()
	if g.replyReady { // a call_module reply the guest did not take
		g.dropReply()
	}
	if err != nil {
		return nil, 0, g.crashed(ctx, err)
	}
	packed := g.stack[0]
	ptr, n := uint32(packed), uint32(packed>>32&replyLenMask)
	if n == 0 {
		return nil, packed &^ (replyLenMask<<32 | 0xffffffff), nil
	}
	b, ok := g.mem.Read(ptr, n)
	if !ok {
		return nil, 0, &crash{msg: fmt.Sprintf("the guest replied with %d bytes at %#x, outside its memory of %d bytes", n, ptr, g.mem.Size())}
	}
	return b, packed &^ (replyLenMask<<32 | 0xffffffff), nil
}

// maxScratch is the largest encoding buffer a guest keeps between calls.
const maxScratch = 1 << 20

// keepScratch keeps b's storage for the next request, unless it grew large.
func (g *guest) keepScratch(b []byte) {
	if cap(b) <= maxScratch {
		g.scratch = b[:0]
	} else {
		g.scratch = nil
	}
}

// request writes data into the guest's request buffer, growing it first
// when it is too small.
func (g *guest) request(ctx context.Context, data []byte) error {
	if uint32(len(data)) > g.bufCap || g.bufCap == 0 {
		size := max(uint32(len(data)), 2*g.bufCap, initialBuffer)
		g.stack = [2]uint64{uint64(size)}
		if err := g.buffer.CallWithStack(ctx, g.stack[:]); err != nil {
			return g.crashed(ctx, err)
		}
		g.bufPtr, g.bufCap = uint32(g.stack[0]), size
	}
	if len(data) > 0 && !g.mem.Write(g.bufPtr, data) {
		return &crash{msg: fmt.Sprintf("the guest's request buffer at %#x is outside its memory of %d bytes", g.bufPtr, g.mem.Size())}
	}
	return nil
}

// hook runs a lifecycle export (init, check, close) whose argument, if
// any, is the length of what request wrote.
func (g *guest) hook(ctx context.Context, fn api.Function, args ...uint64) error {
	reply, flags, err := g.invoke(ctx, fn, args...)
	if err != nil {
		return err
	}
	if flags&replyError != 0 {
		return g.replyError(reply, flags)
	}
	return nil
}

// replyError decodes an error reply, {"code": …, "message": …}. A panic the
// guest recovered asks, through replyDiscard, to be thrown away; it comes
// back as a *crash wrapping the guest's error, so that the pool does.
func (g *guest) replyError(reply []byte, flags uint64) error {
	e := decodeError(reply)
	if flags&replyDiscard != 0 {
		return &crash{err: e}
	}
	return e
}

func decodeError(reply []byte) *sdk.Error {
	m, err := cbor.UnmarshalMap(reply)
	code, _ := m["code"].(string)
	msg, _ := m["message"].(string)
	if err != nil || code == "" {
		return sdk.Errorf(sdk.CodeInternal, "the guest replied with an error this host cannot read (%x)", reply[:min(len(reply), 64)])
	}
	return &sdk.Error{Code: sdk.Code(code), Message: msg}
}

// crash is a failure after which a guest must not be used again: a trap, an
// exit, an interrupted call, or a panic the guest recovered.
type crash struct {
	timeout bool       // interrupted at the context's deadline or cancellation
	exit    bool       // the guest exited (Go's runtime does on a fatal error)
	code    uint32     // the exit code
	msg     string     // what happened, in words
	err     *sdk.Error // a recovered panic: the guest's own error
}

func (c *crash) Error() string {
	if c.err != nil {
		return c.err.Error()
	}
	return c.msg
}

// crashed classifies a failed call. The guest is unusable afterwards.
func (g *guest) crashed(ctx context.Context, err error) *crash {
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		switch exit.ExitCode() {
		case sys.ExitCodeDeadlineExceeded, sys.ExitCodeContextCanceled:
			return &crash{timeout: true, msg: "interrupted: " + ctxReason(ctx)}
		}
		return &crash{exit: true, code: exit.ExitCode(), msg: fmt.Sprintf("the guest exited with code %d%s", exit.ExitCode(), g.said())}
	}
	return &crash{msg: "the guest trapped: " + firstLine(err.Error()) + g.said()}
}

func ctxReason(ctx context.Context) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "the call's deadline passed"
	case ctx.Err() != nil:
		return "the call was canceled"
	}
	return "the instance was closed while the call ran"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// flush logs what the guest wrote during the last call.
func (g *guest) flush() {
	g.stdout.flush()
	g.stderr.flush()
}

// outOfMemory reports whether a crash looks like the guest's runtime
// giving up at the memory limit: Go's runtime says "out of memory" and
// traps (or exits).
func (g *guest) outOfMemory(c *crash, limitPages uint32) bool {
	if c.timeout || c.err != nil {
		return false
	}
	return g.stderr.contains("out of memory") || g.mem != nil && g.mem.Size()/65536+16 >= limitPages
}

// discard closes the module without running OnClose.
// measure brings its instance's count of guest memory up to date with the
// size of g's linear memory. Only the goroutine that holds g calls it.
func (g *guest) measure() {
	if n := g.mem.Size(); n != g.memSize {
		g.owner.memory.Add(int64(n) - int64(g.memSize))
		g.memSize = n
	}
}

func (g *guest) discard() {
	if g.closed {
		return
	}
	g.closed = true
	g.flush()
	if g.owner != nil {
		g.owner.memory.Add(-int64(g.memSize))
	}
	if g.mod != nil {
		_ = g.mod.Close(context.Background())
	}
	if g.owner != nil {
		g.owner.l.callers.Delete(g.name)
	}
}
