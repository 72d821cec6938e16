package process

import (
	"bufio"
	"errors"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/wire"
)

// The host's end of the protocol. Messages, their framing and the
// handshake are package wire's, which the sdk's child side (sdk/process.go)
// uses too; docs/process-protocol.md is the specification. What is here is
// the host's: its values are the value model's maps, encoded in the
// encoding the child picked (JSON as package valuejson writes it), and the
// error codes it keeps.
const (
	envProcess   = wire.EnvProcess
	envVersions  = wire.EnvVersions
	envEncodings = wire.EnvEncodings

	// The protocol versions this host speaks. Version 2 adds calls from a
	// child to other modules, through the host.
	minVersion = wire.MinVersion
	maxVersion = wire.MaxVersion

	// maxFrame bounds one message in either encoding (a CBOR frame's body,
	// a JSON line without its newline).
	maxFrame = wire.MaxFrame
	// maxHello bounds the handshake line.
	maxHello = sdk.MaxManifestSize + 64<<10
	// maxID is the largest id: integers up to 2^53 are exact in every
	// language's JSON.
	maxID = wire.MaxID
)

// The encodings a child may pick.
const (
	encCBOR = string(wire.CBOR)
	encJSON = string(wire.JSON)
)

// Request kinds.
const (
	kindCall   = wire.Call
	kindCancel = wire.Cancel
	kindPing   = wire.Ping
	kindInit   = wire.Init
	kindCheck  = wire.Check
	kindClose  = wire.Close
)

// request is one message from the host to a child.
type request struct {
	kind    wire.Kind
	id      int64
	method  string         // call
	params  map[string]any // call: the params; init: the configuration
	timeout time.Duration  // call: what is left of the deadline; 0 for none
	trace   string         // call: the W3C traceparent of the call, when the host traces
}

// message is one message from a child: a result or an error for one of
// the host's requests, or (version 2) a request of the child's own, in
// call.
type message struct {
	id     int64
	result map[string]any // nil when the reply carries none
	err    *sdk.Error     // set for an error reply
	call   *childCall     // set for a child's call or cancel; id is the child's
}

// childCall is what a child asks of the host (protocol version 2): to call
// a module on behalf of one of the host's requests in flight (kindCall), or
// to forget such a call (kindCancel; only the message's id is set).
type childCall struct {
	kind    wire.Kind
	parent  int64 // the host's request the call is made for
	target  string
	method  string
	params  map[string]any // never nil
	timeout time.Duration  // what was left of the child's deadline; 0 for none
}

// codec writes requests and reads the child's messages in one encoding, at
// the version the child picked. Its reading side belongs to whichever
// goroutine holds the child's reader role; its writing side is safe for
// concurrent use.
type codec struct {
	enc     wire.Encoding
	version int
	in      *wire.Reader
	dec     wire.Decoder
	values  cbor.Decoder // the CBOR values of the message being read
}

func codecFor(encoding string, version int, in *bufio.Reader) *codec {
	enc := wire.Encoding(encoding)
	return &codec{enc: enc, version: version, in: wire.NewReader(in, enc, "stdout"),
		dec: wire.Decoder{Encoding: enc, FromChild: true}}
}

// protocolError is a child breaking the protocol: the child is replaced.
type protocolError = wire.ProtocolError

func protocolErrorf(format string, args ...any) *protocolError { return wire.Errorf(format, args...) }

// appendRequest appends req's whole frame to b. An error is the params'
// (a bad_params *sdk.Error); b is then unusable.
func (c *codec) appendRequest(b []byte, req request) ([]byte, error) {
	m := wire.Message{Kind: req.kind, ID: req.id}
	var vp *[]byte
	switch req.kind {
	case kindCall:
		m.Method, m.Timeout, m.TraceParent = req.method, req.timeout, req.trace
		params := req.params
		if params == nil {
			params = map[string]any{}
		}
		var err error
		if vp, m.Params, err = c.value(params, "params"); err != nil {
			return nil, err
		}
	case kindInit:
		if req.params != nil {
			var err error
			if vp, m.Config, err = c.value(req.params, "config"); err != nil {
				return nil, err
			}
		}
	}
	b, err := wire.Append(b, c.enc, &m)
	if vp != nil {
		putBuf(vp)
	}
	return b, c.tooLarge(err, "request")
}

// appendReply appends the whole frame of the host's reply to the child's
// call id (version 2): a result (nil for none) or an error. An error is the
// result's (it cannot be sent); b is then unusable.
func (c *codec) appendReply(b []byte, id int64, result map[string]any, e *sdk.Error) ([]byte, error) {
	m := wire.Message{Kind: wire.Result, ID: id}
	var vp *[]byte
	if e != nil {
		m = wire.Message{Kind: wire.Error, ID: id, Err: &wire.ErrorBody{Code: string(e.Code), Message: e.Message}}
	} else if result != nil {
		var err error
		if vp, m.Result, err = c.value(result, "result"); err != nil {
			return nil, err
		}
	}
	b, err := wire.Append(b, c.enc, &m)
	if vp != nil {
		putBuf(vp)
	}
	return b, c.tooLarge(err, "reply")
}

// value encodes v in a pooled buffer, which the caller puts back. An error
// is a bad_params *sdk.Error that names v's path (what: "params").
func (c *codec) value(v map[string]any, what string) (*[]byte, wire.Raw, error) {
	bp := bufs.Get().(*[]byte)
	var b []byte
	var err error
	if c.enc == wire.JSON {
		b, err = appendJSON((*bp)[:0], v, what, 0)
	} else if b, err = cbor.Append((*bp)[:0], v); err != nil {
		err = paramsError(err, what)
	}
	if err != nil {
		putBuf(bp)
		return nil, nil, err
	}
	*bp = b
	return bp, b, nil
}

// tooLarge says what is over the frame limit as bad_params.
func (c *codec) tooLarge(err error, what string) error {
	var tl *wire.TooLargeError
	if errors.As(err, &tl) {
		limit := "frame"
		if c.enc == wire.JSON {
			limit = "line"
		}
		return sdk.Errorf(sdk.CodeBadParams, "the %s of %d bytes is over the process protocol's %s limit of %d bytes", what, tl.Size, limit, maxFrame)
	}
	return err
}

// paramsError turns an encoder's error about the params into bad_params.
func paramsError(err error, what string) error {
	var ee *cbor.EncodeError
	if errors.As(err, &ee) {
		return sdk.Errorf(sdk.CodeBadParams, "%s%s: %s", what, strings.TrimPrefix(ee.Path, "value"), ee.Msg)
	}
	return sdk.AsError(err)
}

// timeoutMicros rounds up, so that a call never gets less time than it has.
func timeoutMicros(d time.Duration) int64 { return wire.TimeoutMicros(d) }

// readMessage reads the next message. A malformed one is a *protocolError;
// other errors are the pipe's. After a timeout (a read deadline, which may
// strike in the middle of a message), calling it again resumes where it
// stopped.
func (c *codec) readMessage() (message, error) {
	body, err := c.in.Next()
	if err != nil {
		return message{}, err
	}
	m, err := c.dec.Decode(body)
	if err != nil {
		return message{}, err
	}
	switch m.Kind {
	case wire.Result, wire.Error:
	case wire.Call, wire.Cancel:
		if c.version < 2 {
			return message{}, protocolErrorf("a message of unknown type %q (the child picked process protocol version %d; a child that calls other modules picks version 2)", m.Kind, c.version)
		}
		return c.childCall(&m)
	case wire.Unknown:
		return message{}, protocolErrorf("a message of unknown type %q", m.Type)
	default: // a host's request, from the child
		return message{}, protocolErrorf("a message of unknown type %q (a request only the host sends)", m.Kind)
	}
	msg := message{id: m.ID}
	if m.Err != nil {
		msg.err = knownCode(&sdk.Error{Code: sdk.Code(m.Err.Code), Message: m.Err.Message})
		return msg, nil
	}
	if m.Result != nil {
		if msg.result, err = c.decodeMap(m.Result, "result"); err != nil {
			return message{}, err
		}
	}
	return msg, nil
}

// decodeMap decodes a map the child sent (what: its key, in errors).
func (c *codec) decodeMap(raw wire.Raw, what string) (map[string]any, error) {
	var v any
	var err error
	if c.enc == wire.JSON {
		v, err = parseJSONObject(raw, sdk.MaxDepth+1)
	} else {
		c.values.Reset(raw)
		v, err = c.values.ReadValue()
		c.values.Reset(nil)
	}
	if err != nil {
		return nil, protocolErrorf("%q holds what is not a value of the value model: %v", what, err)
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// childCall makes a child's call or cancel (version 2) a message.
func (c *codec) childCall(m *wire.Message) (message, error) {
	cc := &childCall{kind: m.Kind}
	msg := message{id: m.ID, call: cc}
	if m.Kind == wire.Cancel {
		return msg, nil
	}
	cc.parent, cc.target, cc.method, cc.timeout = m.Parent, m.Target, m.Method, m.Timeout
	if m.Params == nil {
		cc.params = map[string]any{}
		return msg, nil
	}
	var err error
	if cc.params, err = c.decodeMap(m.Params, "params"); err != nil {
		return message{}, err
	}
	return msg, nil
}

// knownCode keeps a child's error code when it is one of hotmod's, and
// makes any other a module_error that names it. A module may pass on the
// error of a module it called (call_depth, undeclared, overloaded, …), so
// every code of the sdk is kept.
func knownCode(e *sdk.Error) *sdk.Error {
	switch e.Code {
	case sdk.CodeUnknownModule, sdk.CodeUnknownMethod, sdk.CodeBadParams, sdk.CodeTimeout, sdk.CodePanic,
		sdk.CodeNotActive, sdk.CodeIncompatible, sdk.CodeInternal, sdk.CodeModule,
		sdk.CodeOverloaded, sdk.CodeCircuitOpen, sdk.CodeUndeclared, sdk.CodeCallDepth:
		return e
	}
	if e.Code == "" {
		return &sdk.Error{Code: sdk.CodeModule, Message: e.Message}
	}
	return &sdk.Error{Code: sdk.CodeModule, Message: string(e.Code) + ": " + e.Message}
}

// readLine reads the handshake line, of at most limit bytes, without its
// newline; the slice is valid until the next read.
func readLine(r *bufio.Reader, limit int) ([]byte, error) { return wire.ReadLine(r, limit, "stdout") }

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
