//go:build wasip1 && go1.24

package sdk

// Calls from a wasm guest to other modules (wasm ABI 1.1; docs/wasm-abi.md,
// "Calling other modules"). A guest has no per-call context from the host:
// Call finds no Host in the context a method got, and falls back to
// guestHost, which init sets to wasmHost. wasmHost hands the call to the
// host through two imports:
//
//	call_module(req_ptr, req_len i32) → i64
//	take_reply(ptr, len i32) → i32
//
// The request is CBOR [target, method, params]. The host runs the call to
// its end while the guest waits in call_module, keeps the reply and returns
// its length and whether it is an error; the guest allocates that many
// bytes and has the host copy the reply in. So the host never allocates in
// guest memory and never calls back into the guest during a call: nothing
// is re-entered.
//
// The linker keeps the imports only in a guest that calls Call (or CallAs):
// a module that does not imports nothing from "hotmod", and loads on a host
// of ABI 1.0 as well.

import (
	"context"
	"runtime"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// wasmCallModule asks the host to call a module: req is CBOR [target,
// method, params]. It returns the reply's length in bits 32-61 and bit 63
// set when the reply is an error, {"code": …, "message": …}; bits 0-31 are
// zero (there is no address: the reply is in host memory until
// wasmTakeReply copies it).
//
//go:wasmimport hotmod call_module
func wasmCallModule(reqPtr, reqLen uint32) uint64

// wasmTakeReply copies the reply of the last call_module into [ptr,
// ptr+n), n being its length, and returns n; it returns 0 when there is no
// reply to take or n is not its length.
//
//go:wasmimport hotmod take_reply
func wasmTakeReply(ptr, n uint32) uint32

func init() {
	var h Host = wasmHost{}
	guestHost.Store(&h)
}

// traceParentMethod is the method of the reserved target "" that asks the
// host for the W3C traceparent of the call the guest serves.
const traceParentMethod = "traceparent"

// hostTraceParent asks the host for the traceparent of the call in
// progress (a call to target "", method "traceparent"); a host that traces
// nothing, or an older host, answers none. Only a guest that calls
// TraceParent links it, and with it the imports.
func hostTraceParent() string {
	out, err := wasmHost{}.Invoke(context.Background(), "", traceParentMethod, nil)
	if err != nil {
		return ""
	}
	tp, _ := out["traceparent"].(string)
	return tp
}

// wasmHost is the Host of a wasm guest: the host's call_module import.
type wasmHost struct{}

// Invoke calls method on target through the host. The host carries the
// deadline of the call this guest is serving into the callee, and decides
// what the module may call; ctx is only checked before the call.
func (wasmHost) Invoke(ctx context.Context, target, method string, params map[string]any) (map[string]any, error) {
	if err := ctx.Err(); err != nil {
		return nil, Errorf(CodeTimeout, "calling %s.%s: %v before the call started", target, method, err)
	}
	req := make([]byte, 0, 64+len(target)+len(method))
	req = cbor.AppendArrayHeader(req, 3)
	req = cbor.AppendString(req, wasmValidUTF8(target))
	req = cbor.AppendString(req, wasmValidUTF8(method))
	req, err := appendAny(req, params)
	if err != nil {
		return nil, Errorf(CodeBadParams, "calling %s.%s: params are outside the value model: %s", target, method, err.msg)
	}
	packed := wasmCallModule(wasmAddr(req), uint32(len(req)))
	runtime.KeepAlive(req)
	n := uint32(packed >> 32 & wasmMaxReply)
	reply := make([]byte, n)
	if n > 0 && wasmTakeReply(wasmAddr(reply), n) != n {
		return nil, Errorf(CodeInternal, "calling %s.%s: the host did not hand over its reply of %d bytes (take_reply failed)", target, method, n)
	}
	runtime.KeepAlive(reply)
	if packed&wasmReplyError != 0 {
		return nil, wasmDecodeError(reply)
	}
	out, err2 := cbor.UnmarshalMap(reply)
	if err2 != nil {
		return nil, Errorf(CodeInternal, "calling %s.%s: the host's reply is %s", target, method, cborProblem(err2))
	}
	return out, nil
}

// wasmAddr is the address of b's first byte in linear memory (0 for an
// empty b). Go's collector does not move objects; the caller keeps b alive
// across the import call.
func wasmAddr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// wasmDecodeError decodes an error reply, {"code": …, "message": …}, into
// an *Error with the same code.
func wasmDecodeError(reply []byte) *Error {
	m, err := cbor.UnmarshalMap(reply)
	code, _ := m["code"].(string)
	msg, _ := m["message"].(string)
	if err != nil || code == "" {
		return Errorf(CodeInternal, "the host replied with an error this guest cannot read (%x)", reply[:min(len(reply), 64)])
	}
	return &Error{Code: Code(code), Message: msg}
}
