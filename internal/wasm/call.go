package wasm

// Calls from a guest to other modules (wasm ABI 1.1; docs/wasm-abi.md,
// "Calling other modules"). The host module "hotmod" gives every guest two
// functions:
//
//	call_module(req_ptr, req_len i32) → i64
//	take_reply(ptr, len i32) → i32
//
// A guest calls call_module with CBOR [target, method, params] in its own
// memory. The host decodes it, finds which version the guest belongs to
// (guests are instantiated under names of their own, which callers maps to
// the *guest) and calls the sdk.Host that version got in the context of
// Instance.Init, with the context wazero hands the host function: the
// context of the export call in progress, carrying the outer call's
// deadline and call chain. It keeps the reply (a CBOR map, or an error
// {"code", "message"}) with the guest and returns its length and an error
// bit; the guest allocates that many bytes and calls take_reply, which
// copies the reply in. The host never allocates in guest memory and never
// calls into the calling guest while it waits: the call is synchronous and
// not re-entrant.
//
// The Host decides what the module may call, routes the call and limits the
// depth of a chain; this file only carries calls. See acquire for the rule
// that keeps a chain that comes back to a version from waiting on itself.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hotmod/hotmod/internal/chain"
	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// The host module guests of ABI 1.1 import, and its functions.
const (
	importModule     = "hotmod"
	importCallModule = "call_module"
	importTakeReply  = "take_reply"
)

// hostFunctions are the functions of the host module, with their
// signatures: checkShape refuses a guest that imports anything else from it.
var hostFunctions = map[string][2][]api.ValueType{
	importCallModule: {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI64}},
	importTakeReply:  {{api.ValueTypeI32, api.ValueTypeI32}, {api.ValueTypeI32}},
}

// traceParentMethod, called on the reserved target "", is not a call to a
// module: it answers {"traceparent": …}, the W3C trace context of the call
// the guest serves ("" when the host traces nothing).
const traceParentMethod = "traceparent"

// hostFunctionNames lists hostFunctions for messages.
const hostFunctionNames = importCallModule + " and " + importTakeReply

// instantiateHostModule adds the "hotmod" host module to l's runtime.
func (l *Loader) instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	sig := func(name string) ([]api.ValueType, []api.ValueType) {
		s := hostFunctions[name]
		return s[0], s[1]
	}
	callParams, callResults := sig(importCallModule)
	takeParams, takeResults := sig(importTakeReply)
	_, err := rt.NewHostModuleBuilder(importModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(l.callModule), callParams, callResults).
		WithParameterNames("req_ptr", "req_len").
		Export(importCallModule).
		NewFunctionBuilder().
		WithGoModuleFunction(api.GoModuleFunc(l.takeReply), takeParams, takeResults).
		WithParameterNames("ptr", "len").
		Export(importTakeReply).
		Instantiate(ctx)
	return err
}

// guestName names a new guest's module in the runtime, uniquely: callers
// finds the guest by it, from its start on.
func (l *Loader) guestName() string {
	return "guest-" + strconv.FormatUint(l.seq.Add(1), 10)
}

// caller returns the guest that runs mod.
func (l *Loader) caller(mod api.Module) *guest {
	if v, ok := l.callers.Load(mod.Name()); ok {
		return v.(*guest)
	}
	return nil
}

// callModule is the host function call_module.
func (l *Loader) callModule(ctx context.Context, mod api.Module, stack []uint64) {
	g := l.caller(mod)
	if g == nil {
		// Only this loader's guests run in its runtime.
		panic(fmt.Errorf("%s.%s called from module %q, which this loader did not start", importModule, importCallModule, mod.Name()))
	}
	stack[0] = g.callModule(ctx, mod, uint32(stack[0]), uint32(stack[1]))
}

// takeReply is the host function take_reply.
func (l *Loader) takeReply(_ context.Context, mod api.Module, stack []uint64) {
	g := l.caller(mod)
	if g == nil {
		panic(fmt.Errorf("%s.%s called from module %q, which this loader did not start", importModule, importTakeReply, mod.Name()))
	}
	stack[0] = uint64(g.takeReply(mod, uint32(stack[0]), uint32(stack[1])))
}

// callModule runs one call of the guest to another module and keeps the
// reply for takeReply. It returns the reply's length (bits 32-61) and
// replyError.
func (g *guest) callModule(ctx context.Context, mod api.Module, reqPtr, reqLen uint32) uint64 {
	i := g.owner
	g.replyReady = false
	if reqLen > maxRequest {
		return g.keepError(sdk.Errorf(sdk.CodeBadParams, "%s: a call to another module of %d bytes encoded, over the limit of %d", i.label(), reqLen, maxRequest))
	}
	req, ok := mod.Memory().Read(reqPtr, reqLen)
	if !ok {
		return g.keepError(sdk.Errorf(sdk.CodeBadParams, "%s: the request of a call to another module, %d bytes at %#x, is outside the guest's memory of %d bytes", i.label(), reqLen, reqPtr, mod.Memory().Size()))
	}
	target, method, params, err := decodeModuleCall(req)
	if err != nil {
		return g.keepError(sdk.Errorf(sdk.CodeBadParams, "%s: a call to another module that this host cannot read: %v", i.label(), err))
	}
	if target == "" && method == traceParentMethod {
		// Not a module: the guest asks for the traceparent of the call it
		// serves (sdk.TraceParent).
		b := cbor.AppendMapHeader(g.reply[:0], 1)
		b = cbor.AppendString(b, "traceparent")
		b = cbor.AppendString(b, validUTF8(sdk.TraceParent(ctx)))
		return g.keepReply(b, 0)
	}
	if g.mod == nil {
		return g.keepError(sdk.Errorf(sdk.CodeUndeclared,
			"%s called %s.%s during its package initialisation, when it cannot call other modules: call them from OnInit or from a method", i.label(), target, method))
	}
	h := i.host.Host()
	if h == nil {
		return g.keepError(chain.NoHost(i.manifest, target, method))
	}
	out, err := invokeHost(ctx, h, target, method, params)
	if ctx.Err() != nil && i.Interruptible() {
		g.interrupted(ctx, mod)
	}
	if err != nil {
		return g.keepError(err)
	}
	b, err := cbor.Append(g.reply[:0], out)
	if err != nil {
		msg := err.Error()
		if e := (*cbor.EncodeError)(nil); errors.As(err, &e) {
			msg = e.Path + ": " + e.Msg
		}
		return g.keepError(sdk.Errorf(sdk.CodeModule, "%s.%s returned a result outside the value model, which cannot cross into %s: %s", target, method, i.label(), msg))
	}
	if len(b) > maxRequest {
		return g.keepError(sdk.Errorf(sdk.CodeModule, "%s.%s returned a result of %d bytes encoded, over the limit of %d that a guest reads", target, method, len(b), maxRequest))
	}
	return g.keepReply(b, 0)
}

// invokeHost calls h, turning a panic in it (a bug of the host's) into an
// internal error for the guest.
func invokeHost(ctx context.Context, h sdk.Host, target, method string, params map[string]any) (out map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, sdk.Errorf(sdk.CodeInternal, "calling %s.%s: the host panicked: %v", target, method, r)
		}
	}()
	return h.Invoke(ctx, target, method, params)
}

// interrupted ends the guest's export call once its context is done: the
// outer call is over, and the caller gets timeout. If wazero has already
// closed the module (WithCloseOnContextDone), the guest stops at its next
// check, where wazero also frees what the module holds; otherwise the host
// function exits the guest here, as WASI's proc_exit does.
func (g *guest) interrupted(ctx context.Context, mod api.Module) {
	if mod.IsClosed() {
		return
	}
	code := sys.ExitCodeDeadlineExceeded
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		code = sys.ExitCodeContextCanceled
	}
	_ = mod.CloseWithExitCode(ctx, code)
	panic(sys.NewExitError(code))
}

// keepError keeps err as the reply, {"code": …, "message": …}.
func (g *guest) keepError(err error) uint64 {
	e := sdk.AsError(err)
	b := cbor.AppendMapHeader(g.reply[:0], 2)
	b = cbor.AppendString(b, "code")
	b = cbor.AppendString(b, string(e.Code))
	b = cbor.AppendString(b, "message")
	b = cbor.AppendString(b, validUTF8(e.Message))
	return g.keepReply(b, replyError)
}

// keepReply keeps b until the guest takes it, and packs its length and
// flags as call_module returns them.
func (g *guest) keepReply(b []byte, flags uint64) uint64 {
	g.reply, g.replyReady = b, true
	return uint64(len(b))<<32 | flags
}

// takeReply copies the kept reply to [ptr, ptr+n) in the guest's memory
// and returns n; 0 when there is none, n is not its length, or the range
// is outside the guest's memory. The reply is gone either way.
func (g *guest) takeReply(mod api.Module, ptr, n uint32) uint32 {
	if !g.replyReady {
		return 0
	}
	b := g.reply
	g.dropReply()
	if uint32(len(b)) != n || !mod.Memory().Write(ptr, b) {
		return 0
	}
	return n
}

// dropReply forgets the kept reply, keeping its storage unless it grew
// large.
func (g *guest) dropReply() {
	g.replyReady = false
	if cap(g.reply) > maxScratch {
		g.reply = nil
	}
}

// decodeModuleCall decodes a call_module request: [target, method, params].
func decodeModuleCall(req []byte) (target, method string, params map[string]any, err error) {
	d := cbor.NewDecoder(req, cbor.Limits{})
	n, err := d.ReadArrayHeader()
	if err != nil {
		return "", "", nil, err
	}
	if n != 3 {
		return "", "", nil, fmt.Errorf("an array of %d items, not [target, method, params]", n)
	}
	if target, err = d.ReadString(); err != nil {
		return "", "", nil, fmt.Errorf("the target: %v", err)
	}
	if method, err = d.ReadString(); err != nil {
		return "", "", nil, fmt.Errorf("the method: %v", err)
	}
	if k, err := d.Peek(); err != nil || k != cbor.KindMap {
		if err == nil {
			err = errors.New("not a map")
		}
		return "", "", nil, fmt.Errorf("the params: %v", err)
	}
	v, err := d.ReadValue()
	if err != nil {
		return "", "", nil, fmt.Errorf("the params: %v", err)
	}
	if !d.Done() {
		return "", "", nil, fmt.Errorf("%d bytes after [target, method, params]", len(req)-d.Offset())
	}
	return target, method, v.(map[string]any), nil
}

// label names the instance: name@version, or its path before the manifest
// is read.
func (i *Instance) label() string {
	if i.manifest.Name == "" {
		return i.path
	}
	return i.manifest.Name + "@" + i.manifest.Version
}

// checkImport checks one import of a guest: WASI preview 1, or a function
// of the host module with its signature.
func checkImport(f api.FunctionDefinition) error {
	mod, name, _ := f.Import()
	switch mod {
	case wasi_snapshot_preview1.ModuleName:
		return nil
	case importModule:
		sig, ok := hostFunctions[name]
		if !ok {
			return fmt.Errorf("it imports %s.%s, which this host does not provide (its %q module has %s): it was built with a newer SDK than this host's (upgrade the host), or it is not a hotmod module",
				mod, name, importModule, hostFunctionNames)
		}
		if !equalTypes(f.ParamTypes(), sig[0]) || !equalTypes(f.ResultTypes(), sig[1]) {
			return fmt.Errorf("its import %s.%s has the signature %s, not %s", mod, name,
				signature(f.ParamTypes(), f.ResultTypes()), signature(sig[0], sig[1]))
		}
		return nil
	}
	return fmt.Errorf("it imports %s.%s, which this host does not provide (hotmod guests import only WASI preview 1, %q, and the host's %q module: %s)",
		mod, name, wasi_snapshot_preview1.ModuleName, importModule, hostFunctionNames)
}

// validUTF8 replaces invalid UTF-8 (CBOR text must be valid, and a guest's
// decoder refuses what is not).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
