//go:build wasip1 && go1.24

package sdk

// The guest side of the wasm transport. Built with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared, a module's main package never runs its main; package
// initialisation does (the host calls _initialize), so the module New
// declared is there (Declared), and the host reaches it through the exports
// below. The ABI they make is written down in docs/wasm-abi.md at the root of
// the repository; the host refuses a guest whose ABI major version it does
// not speak. Calls to other modules (Call) go through the host's imports;
// see wasm_call.go.
//
// Why the build constraint says go1.24: //go:wasmexport arrived in Go 1.24,
// and so did -buildmode=c-shared for wasip1. The compiler does not gate the
// directive on the file's language version (this module's go line is 1.22),
// but older toolchains would build a guest without exports, which no host
// could use; with the constraint, such a build has none of this file and the
// host says what is missing.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/internal/word"
)

// The wasm ABI version this SDK speaks: a host refuses another major. 1.1
// added the imports for calls to other modules (wasm_call.go).
const (
	wasmABIMajor = 1
	wasmABIMinor = 1
)

// Reply flags in the packed uint64 that the exports return: bits 0-31 are
// the reply's address in linear memory, bits 32-61 its length, bit 62 asks
// the host to discard this instance, bit 63 says the reply is an error.
const (
	wasmReplyDiscard = uint64(1) << 62
	wasmReplyError   = uint64(1) << 63
	wasmMaxReply     = 1<<30 - 1
)

// wasmState is the guest's side of the conversation with the host. Calls
// into one instance never overlap (the host pools instances), so it needs
// no lock.
var wasmState struct {
	in      []byte    // the request buffer the host writes into
	out     []byte    // the last reply, kept alive until the next export call
	result  []byte    // the buffer results are encoded into, reused by the next call
	names   []string  // method names, so a lookup by bytes does not allocate
	words   []uint64  // the first 8 bytes of each name, as a little-endian word
	methods []*method // the methods of names, in the same order
	module  *Module   // Declared(), kept: an atomic load is two calls in wasm
}

// wasmMaxKeptResult is the largest result buffer kept for the next call: a
// bigger one (after a large result) is left to the collector.
const wasmMaxKeptResult = 64 << 10

//go:wasmexport hotmod_abi
func wasmABI() uint32 { return wasmABIMajor<<16 | wasmABIMinor }

// wasmBuffer returns the address of the request buffer, grown to hold at
// least size bytes. The host writes requests there; the address stays valid
// until the next hotmod_buffer call (Go's collector does not move objects).
//
//go:wasmexport hotmod_buffer
func wasmBuffer(size uint32) uint32 {
	if wasmState.in == nil || int(size) > len(wasmState.in) {
		wasmState.in = make([]byte, max(int(size), 16))
	}
	return uint32(uintptr(unsafe.Pointer(unsafe.SliceData(wasmState.in))))
}

// wasmAbout replies with a CBOR map: {"go": the Go version the guest was
// built with, "sdk": this SDK's version}.
//
//go:wasmexport hotmod_about
func wasmAbout() uint64 {
	b := cbor.AppendMapHeader(nil, 2)
	b = cbor.AppendString(b, "go")
	b = cbor.AppendString(b, runtime.Version())
	b = cbor.AppendString(b, "sdk")
	b = cbor.AppendString(b, Version)
	return wasmReply(b, 0)
}

// wasmManifest replies with the declared module's manifest as JSON, or with
// an error when no module is declared or the declaration has mistakes.
//
//go:wasmexport hotmod_manifest
func wasmManifest() (packed uint64) {
	defer wasmRecover(&packed, "", "reading the manifest")
	m := Declared()
	if m == nil {
		return wasmError(Errorf(CodeIncompatible,
			"the program declares no module: call sdk.New at package level (var Module = sdk.New(…)), not in main or a function"), 0)
	}
	if err := m.Validate(); err != nil {
		return wasmError(err, 0)
	}
	b, err := appendManifestJSON(nil, m.Manifest()) // json.Marshal's bytes, without encoding/json
	if err != nil {
		return wasmError(Errorf(CodeInternal, "encoding the manifest: %v", err), 0)
	}
	return wasmReply(b, 0)
}

// wasmCall calls a method. The request buffer holds the method's name
// (methodLen bytes) followed by the params, a CBOR map (paramsLen bytes;
// none means an empty map). The reply is the result, a CBOR map, or an
// error.
//
//go:wasmexport hotmod_call
func wasmCall(methodLen, paramsLen uint32) (packed uint64) {
	m := wasmState.module
	if m == nil { // package initialisation has run: the module is there or never will be
		m = Declared()
		wasmState.module = m
	}
	in := wasmState.in
	if m == nil || uint64(methodLen)+uint64(paramsLen) > uint64(len(in)) {
		return wasmBadRequest(m, methodLen, paramsLen)
	}
	h, name := wasmMethod(m, int(methodLen))
	params := in[methodLen : methodLen+paramsLen]
	defer wasmRecover(&packed, name, "")
	if h == nil {
		return wasmError(m.unknownMethod(name), 0)
	}
	out, err := m.invokeCBOR(context.Background(), h, name, params, wasmState.result[:0])
	if err != nil {
		return wasmError(err, 0)
	}
	if cap(out) <= wasmMaxKeptResult {
		wasmState.result = out[:0]
	} else {
		wasmState.result = nil
	}
	return wasmReply(out, 0)
}

// wasmInit runs the OnInit hook with the host's configuration for the
// module: a CBOR map in the request buffer (cfgLen bytes; none means nil).
//
//go:wasmexport hotmod_init
func wasmInit(cfgLen uint32) (packed uint64) {
	m := Declared()
	if m == nil || uint64(cfgLen) > uint64(len(wasmState.in)) {
		return wasmBadRequest(m, 0, cfgLen)
	}
	var cfg map[string]any
	if cfgLen > 0 {
		var err error
		if cfg, err = cbor.UnmarshalMap(wasmState.in[:cfgLen]); err != nil {
			return wasmError(Errorf(CodeBadParams, "the module's configuration is %s", cborProblem(err)), 0)
		}
	}
	defer wasmRecover(&packed, "", "OnInit")
	return wasmHookReply(m.Init(context.Background(), cfg))
}

// wasmCheck runs the OnCheck self-test.
//
//go:wasmexport hotmod_check
func wasmCheck() (packed uint64) {
	m := Declared()
	if m == nil {
		return wasmBadRequest(m, 0, 0)
	}
	defer wasmRecover(&packed, "", "OnCheck")
	return wasmHookReply(m.Check(context.Background()))
}

// wasmClose runs the OnClose hook. The host calls it once per instance,
// before it throws the instance away.
//
//go:wasmexport hotmod_close
func wasmClose() (packed uint64) {
	m := Declared()
	if m == nil {
		return wasmBadRequest(m, 0, 0)
	}
	defer wasmRecover(&packed, "", "OnClose")
	return wasmHookReply(m.Close())
}

// wasmMethod returns the method whose name is the first n bytes of the
// request buffer, and its name, without allocating for a method the module
// has. A short list compared in order is cheaper than a map in wasm, where
// every call and every hash costs; names of up to 8 bytes are compared as
// one word (the runtime compares strings a byte at a time in wasm).
func wasmMethod(m *Module, n int) (*method, string) {
	if wasmState.names == nil {
		wasmState.names = make([]string, 0, len(m.infos))
		for _, mi := range m.infos {
			var pad [8]byte
			copy(pad[:], mi.Name)
			wasmState.names = append(wasmState.names, mi.Name)
			wasmState.words = append(wasmState.words, word.LE64(pad[:]))
			wasmState.methods = append(wasmState.methods, m.methods[mi.Name])
		}
	}
	in := wasmState.in // at least 16 bytes once the host asked for it (wasmBuffer)
	b := in[:n]
	if n <= 8 && len(in) >= 8 {
		w := word.LE64(in[:8]) & word.Mask(n)
		for i, name := range wasmState.names {
			if len(name) == n && wasmState.words[i] == w {
				return wasmState.methods[i], name
			}
		}
		return nil, string(b)
	}
	for i, name := range wasmState.names {
		if len(name) == n && name == string(b) {
			return wasmState.methods[i], name
		}
	}
	return nil, string(b)
}

// wasmReply keeps b alive until the next export call and packs its address,
// length and flags.
func wasmReply(b []byte, flags uint64) uint64 {
	if len(b) > wasmMaxReply {
		return wasmError(Errorf(CodeModule, "the reply is %d bytes, over the ABI's limit of %d", len(b), wasmMaxReply), flags)
	}
	wasmState.out = b
	var p uint64
	if len(b) > 0 {
		p = uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
	}
	return p | uint64(len(b))<<32 | flags
}

// wasmError replies with {"code": …, "message": …}.
func wasmError(err error, flags uint64) uint64 {
	e := AsError(err)
	b := make([]byte, 0, 24+len(e.Code)+len(e.Message))
	b = cbor.AppendMapHeader(b, 2)
	b = cbor.AppendString(b, "code")
	b = cbor.AppendString(b, string(e.Code))
	b = cbor.AppendString(b, "message")
	b = cbor.AppendString(b, wasmValidUTF8(e.Message))
	return wasmReply(b, flags|wasmReplyError)
}

// wasmValidUTF8 replaces invalid UTF-8 (CBOR text must be valid).
func wasmValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func wasmHookReply(err error) uint64 {
	if err != nil {
		return wasmError(err, 0)
	}
	return 0 // an empty reply: done
}

func wasmBadRequest(m *Module, a, b uint32) uint64 {
	if m == nil {
		return wasmError(Errorf(CodeIncompatible, "the program declares no module: call sdk.New at package level"), 0)
	}
	return wasmError(Errorf(CodeInternal, "the host sent %d+%d bytes, more than the %d-byte request buffer holds", a, b, len(wasmState.in)), 0)
}

// wasmRecover turns a panic in a method or hook into a panic error, asks the
// host to discard the instance (its state may be half-updated) and prints
// the stack on stderr, which the host logs.
func wasmRecover(packed *uint64, method, hook string) {
	r := recover()
	if r == nil {
		return
	}
	where := "the module"
	if m := Declared(); m != nil {
		where = m.name
	}
	switch {
	case method != "":
		where += "." + method
	case hook != "":
		where += "'s " + hook + " hook"
	}
	fmt.Fprintf(os.Stderr, "panic: %s: %v\n%s", where, r, debug.Stack())
	*packed = wasmError(Errorf(CodePanic, "%s panicked: %v", where, r), wasmReplyDiscard)
}
