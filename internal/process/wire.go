package process

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/cbor"
)

// The protocol's names and numbers; docs/process-protocol.md is the
// specification, and the sdk's child side (sdk/process.go) the other end.
const (
	envProcess   = "HOTMOD_PROCESS"
	envVersions  = "HOTMOD_PROCESS_VERSIONS"
	envEncodings = "HOTMOD_PROCESS_ENCODINGS"

	// The protocol versions this host speaks. Version 2 adds calls from a
	// child to other modules, through the host.
	minVersion = 1
	maxVersion = 2

	// maxFrame bounds one message in either encoding (a CBOR frame's body,
	// a JSON line without its newline).
	maxFrame = 16 << 20
	// maxHello bounds the handshake line.
	maxHello = sdk.MaxManifestSize + 64<<10
)

// The encodings a child may pick.
const (
	encCBOR = "cbor"
	encJSON = "json"
)

// Request kinds, as they appear on the wire under "t".
const (
	kindCall   = "call"
	kindCancel = "cancel"
	kindPing   = "ping"
	kindInit   = "init"
	kindCheck  = "check"
	kindClose  = "close"
)

// request is one message from the host to a child.
type request struct {
	kind    string
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
	kind    string
	parent  int64 // the host's request the call is made for
	target  string
	method  string
	params  map[string]any // never nil
	timeout time.Duration  // what was left of the child's deadline; 0 for none
}

// codec writes requests and reads the child's messages in one encoding, at
// the version the child picked. Its reading side belongs to whichever
// goroutine holds the child's reader role.
type codec interface {
	// appendRequest appends req's whole frame to b. An error is the params'
	// (a bad_params *sdk.Error); b is then unusable.
	appendRequest(b []byte, req request) ([]byte, error)
	// appendReply appends the whole frame of the host's reply to the
	// child's call id (version 2): a result (nil for none) or an error. An
	// error is the result's (it cannot be sent); b is then unusable.
	appendReply(b []byte, id int64, result map[string]any, e *sdk.Error) ([]byte, error)
	// readMessage reads the next message. A malformed one is a
	// *protocolError; other errors are the pipe's. After a timeout (a read
	// deadline, which may strike in the middle of a message), calling it
	// again resumes where it stopped.
	readMessage(r *bufio.Reader) (message, error)
}

func codecFor(encoding string, version int) codec {
	if encoding == encJSON {
		return &jsonCodec{version: version}
	}
	return &cborCodec{version: version}
}

// protocolError is a child breaking the protocol: the child is replaced.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "protocol error: " + e.msg }

func protocolErrorf(format string, args ...any) *protocolError {
	return &protocolError{msg: fmt.Sprintf(format, args...)}
}

// paramsError turns an encoder's error about the params into bad_params.
func paramsError(err error, what string) error {
	var ee *cbor.EncodeError
	if errors.As(err, &ee) {
		return sdk.Errorf(sdk.CodeBadParams, "%s%s: %s", what, strings.TrimPrefix(ee.Path, "value"), ee.Msg)
	}
	return sdk.AsError(err)
}

// cborCodec: frames are a 4-byte big-endian length and a CBOR map.
type cborCodec struct {
	version int
	// The frame being read: got bytes of it so far (header included).
	hdr  [4]byte
	got  int
	size int
	body []byte // reused
	dec  cbor.Decoder
}

func (*cborCodec) appendRequest(b []byte, req request) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	n := 2
	switch req.kind {
	case kindCall:
		n += 2
		if req.timeout > 0 {
			n++
		}
		if req.trace != "" {
			n++
		}
	case kindInit:
		n++
	}
	b = cbor.AppendMapHeader(b, n)
	b = cbor.AppendString(b, "t")
	b = cbor.AppendString(b, req.kind)
	b = cbor.AppendString(b, "id")
	b = cbor.AppendInt(b, req.id)
	switch req.kind {
	case kindCall:
		b = cbor.AppendString(b, "method")
		b = cbor.AppendString(b, req.method)
		b = cbor.AppendString(b, "params")
		var err error
		if b, err = cbor.Append(b, req.params); err != nil {
			return nil, paramsError(err, "params")
		}
		if req.timeout > 0 {
			b = cbor.AppendString(b, "timeout_us")
			b = cbor.AppendInt(b, timeoutMicros(req.timeout))
		}
		if req.trace != "" {
			b = cbor.AppendString(b, "traceparent")
			b = cbor.AppendString(b, req.trace)
		}
	case kindInit:
		b = cbor.AppendString(b, "config")
		if req.params == nil {
			b = cbor.AppendNull(b)
		} else {
			var err error
			if b, err = cbor.Append(b, req.params); err != nil {
				return nil, paramsError(err, "config")
			}
		}
	}
	return finishFrame(b, start, "request")
}

func (*cborCodec) appendReply(b []byte, id int64, result map[string]any, e *sdk.Error) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	if e != nil {
		b = cbor.AppendMapHeader(b, 3)
		b = cbor.AppendString(b, "t")
		b = cbor.AppendString(b, "error")
		b = cbor.AppendString(b, "id")
		b = cbor.AppendInt(b, id)
		b = cbor.AppendString(b, "error")
		b = cbor.AppendMapHeader(b, 2)
		b = cbor.AppendString(b, "code")
		b = cbor.AppendString(b, strings.ToValidUTF8(string(e.Code), "\uFFFD"))
		b = cbor.AppendString(b, "message")
		b = cbor.AppendString(b, strings.ToValidUTF8(e.Message, "\uFFFD"))
		return finishFrame(b, start, "reply")
	}
	n := 2
	if result != nil {
		n = 3
	}
	b = cbor.AppendMapHeader(b, n)
	b = cbor.AppendString(b, "t")
	b = cbor.AppendString(b, "result")
	b = cbor.AppendString(b, "id")
	b = cbor.AppendInt(b, id)
	if result != nil {
		b = cbor.AppendString(b, "result")
		var err error
		if b, err = cbor.Append(b, result); err != nil {
			return nil, paramsError(err, "result")
		}
	}
	return finishFrame(b, start, "reply")
}

// finishFrame writes the length of the frame that starts at b[start]; what
// names it in an error ("request", "reply").
func finishFrame(b []byte, start int, what string) ([]byte, error) {
	size := len(b) - start - 4
	if size > maxFrame {
		return nil, sdk.Errorf(sdk.CodeBadParams, "the %s of %d bytes is over the process protocol's frame limit of %d bytes", what, size, maxFrame)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

// timeoutMicros rounds up, so that a call never gets less time than it has.
func timeoutMicros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

func (c *cborCodec) readMessage(r *bufio.Reader) (message, error) {
	for c.got < 4 {
		n, err := r.Read(c.hdr[c.got:])
		c.got += n
		if err != nil {
			if err == io.EOF && c.got > 0 {
				return message{}, protocolErrorf("stdout ended in the middle of a frame header")
			}
			return message{}, err
		}
		if c.got == 4 {
			size := binary.BigEndian.Uint32(c.hdr[:])
			if size == 0 || size > maxFrame {
				c.got = 0
				return message{}, protocolErrorf("a frame header announces %d bytes (1 to %d allowed; the bytes were %q%s)", size, maxFrame, c.hdr[:], textHint(c.hdr[:]))
			}
			c.size = int(size)
			if cap(c.body) < c.size {
				c.body = make([]byte, c.size)
			}
		}
	}
	body := c.body[:c.size]
	for c.got < 4+c.size {
		n, err := r.Read(body[c.got-4:])
		c.got += n
		if err != nil {
			if err == io.EOF {
				return message{}, protocolErrorf("stdout ended in the middle of a frame of %d bytes", c.size)
			}
			return message{}, err
		}
	}
	c.got = 0
	msg, err := c.parseMessage(body)
	if c.size > 64<<10 {
		c.body = nil // do not keep the odd huge frame alive
	}
	return msg, err
}

// parseMessage decodes a message map; unknown keys are skipped.
func (c *cborCodec) parseMessage(body []byte) (msg message, err error) {
	d := &c.dec
	d.Reset(body)
	defer d.Reset(nil)
	bad := func(err error) (message, error) {
		return message{}, protocolErrorf("a message that is not a CBOR map of the protocol: %v", err)
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return bad(err)
	}
	var kind string
	var cf callFields
	hasID := false
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		key, err := d.ReadStringBytes()
		if err != nil {
			return bad(err)
		}
		switch string(key) {
		case "t":
			t, err := d.ReadStringBytes()
			if err != nil {
				return bad(err)
			}
			switch string(t) {
			case "result", "error":
				kind = string(t)
			case kindCall, kindCancel:
				kind = string(t)
			default:
				return message{}, protocolErrorf("a message of unknown type %q", t)
			}
		case "id":
			if msg.id, err = d.ReadInt(); err != nil {
				return bad(err)
			}
			hasID = true
		case "result":
			k, err := d.Peek()
			if err != nil {
				return bad(err)
			}
			switch k {
			case cbor.KindNull:
				err = d.ReadNull()
			case cbor.KindMap:
				var v any
				v, err = d.ReadValue()
				msg.result, _ = v.(map[string]any)
			default:
				err = fmt.Errorf("the result is %s, not a map", k)
			}
			if err != nil {
				return bad(err)
			}
		case "error":
			if msg.err, err = readCBORError(d); err != nil {
				return bad(err)
			}
		case "parent", "target", "method", "params", "timeout_us":
			if c.version < 2 { // not keys of version 1
				if err := d.Skip(); err != nil {
					return bad(err)
				}
				continue
			}
			v, err := d.ReadValue()
			if err != nil {
				return bad(err)
			}
			cf.set(string(key), v)
		default:
			if err := d.Skip(); err != nil {
				return bad(err)
			}
		}
	}
	if n < 0 {
		if err := d.ReadBreak(); err != nil {
			return bad(err)
		}
	}
	if !d.Done() {
		return bad(fmt.Errorf("%d bytes after the map", len(body)-d.Offset()))
	}
	return finishMessage(msg, kind, hasID, c.version, &cf)
}

func readCBORError(d *cbor.Decoder) (*sdk.Error, error) {
	n, err := d.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	e := &sdk.Error{}
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		key, err := d.ReadStringBytes()
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "code":
			s, err := d.ReadString()
			if err != nil {
				return nil, err
			}
			e.Code = sdk.Code(s)
		case "message":
			if e.Message, err = d.ReadString(); err != nil {
				return nil, err
			}
		default:
			if err := d.Skip(); err != nil {
				return nil, err
			}
		}
	}
	if n < 0 {
		if err := d.ReadBreak(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// callFields are the keys of a child's call (version 2) as they came, to be
// checked once the message's type is known.
type callFields struct {
	parent, target, method, params, timeoutUS any
}

func (f *callFields) set(key string, v any) {
	switch key {
	case "parent":
		f.parent = v
	case "target":
		f.target = v
	case "method":
		f.method = v
	case "params":
		f.params = v
	case "timeout_us":
		f.timeoutUS = v
	}
}

// finishMessage checks what every message needs, whatever its encoding.
func finishMessage(msg message, kind string, hasID bool, version int, cf *callFields) (message, error) {
	switch {
	case kind == "":
		return message{}, protocolErrorf(`a message without "t"`)
	case (kind == kindCall || kind == kindCancel) && version < 2:
		return message{}, protocolErrorf("a message of unknown type %q (the child picked process protocol version %d; a child that calls other modules picks version 2)", kind, version)
	case !hasID:
		return message{}, protocolErrorf(`a %q message without "id"`, kind)
	case kind == "error" && msg.err == nil:
		return message{}, protocolErrorf(`an "error" message without "error"`)
	case kind == "result":
		msg.err = nil
	case kind == kindCall || kind == kindCancel:
		return finishChildCall(msg, kind, cf)
	}
	if msg.err != nil {
		msg.result = nil
		msg.err = knownCode(msg.err)
	}
	return msg, nil
}

// finishChildCall checks a child's call or cancel.
func finishChildCall(msg message, kind string, cf *callFields) (message, error) {
	if msg.id <= 0 || msg.id > maxID {
		return message{}, protocolErrorf(`a %q message with "id" %d (a child's ids are from 1 to 2^53-1)`, kind, msg.id)
	}
	cc := &childCall{kind: kind}
	msg.result, msg.err, msg.call = nil, nil, cc
	if kind == kindCancel {
		return msg, nil
	}
	var ok bool
	if cc.parent, ok = cf.parent.(int64); !ok {
		return message{}, protocolErrorf(`call %d has no integer "parent" (the id of the host's request it is made for)`, msg.id)
	}
	if cc.target, ok = cf.target.(string); !ok || cc.target == "" {
		return message{}, protocolErrorf(`call %d has no "target" (the module or capability to call)`, msg.id)
	}
	if cc.method, ok = cf.method.(string); !ok || cc.method == "" {
		return message{}, protocolErrorf(`call %d has no "method"`, msg.id)
	}
	switch p := cf.params.(type) {
	case nil:
		cc.params = map[string]any{}
	case map[string]any:
		cc.params = p
	default:
		return message{}, protocolErrorf(`call %d: "params" is %s, not a map`, msg.id, sdk.TypeName(p))
	}
	switch us := cf.timeoutUS.(type) {
	case nil:
	case int64:
		if us > 0 && us < math.MaxInt64/int64(time.Microsecond) {
			cc.timeout = time.Duration(us) * time.Microsecond
		}
	default:
		return message{}, protocolErrorf(`call %d: "timeout_us" is %s, not an integer`, msg.id, sdk.TypeName(us))
	}
	return msg, nil
}

// maxID is the largest id: integers up to 2^53 are exact in every
// language's JSON.
const maxID = 1<<53 - 1

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

// jsonCodec: one JSON object per line.
type jsonCodec struct {
	version int
	partial []byte // the line being read, when it spans reads
}

func (*jsonCodec) appendRequest(b []byte, req request) ([]byte, error) {
	start := len(b)
	b = append(b, `{"t":"`...)
	b = append(b, req.kind...)
	b = append(b, `","id":`...)
	b = strconv.AppendInt(b, req.id, 10)
	var err error
	switch req.kind {
	case kindCall:
		b = append(b, `,"method":`...)
		b = appendJSONString(b, strings.ToValidUTF8(req.method, "\uFFFD"))
		b = append(b, `,"params":`...)
		params := req.params
		if params == nil {
			params = map[string]any{}
		}
		if b, err = appendJSON(b, params, "params", 0); err != nil {
			return nil, err
		}
		if req.timeout > 0 {
			b = append(b, `,"timeout_us":`...)
			b = strconv.AppendInt(b, timeoutMicros(req.timeout), 10)
		}
		if req.trace != "" {
			b = append(b, `,"traceparent":`...)
			b = appendJSONString(b, strings.ToValidUTF8(req.trace, "\uFFFD"))
		}
	case kindInit:
		b = append(b, `,"config":`...)
		if b, err = appendJSON(b, req.params, "config", 0); err != nil {
			return nil, err
		}
	}
	b = append(b, '}')
	return finishLine(b, start, "request")
}

func (*jsonCodec) appendReply(b []byte, id int64, result map[string]any, e *sdk.Error) ([]byte, error) {
	start := len(b)
	if e != nil {
		b = append(b, `{"t":"error","id":`...)
		b = strconv.AppendInt(b, id, 10)
		b = append(b, `,"error":{"code":`...)
		b = appendJSONString(b, strings.ToValidUTF8(string(e.Code), "\uFFFD"))
		b = append(b, `,"message":`...)
		b = appendJSONString(b, strings.ToValidUTF8(e.Message, "\uFFFD"))
		b = append(b, '}')
	} else {
		b = append(b, `{"t":"result","id":`...)
		b = strconv.AppendInt(b, id, 10)
		if result != nil {
			b = append(b, `,"result":`...)
			var err error
			if b, err = appendJSON(b, result, "result", 0); err != nil {
				return nil, err
			}
		}
	}
	b = append(b, '}')
	return finishLine(b, start, "reply")
}

// finishLine ends the line that starts at b[start]; what names it in an
// error ("request", "reply").
func finishLine(b []byte, start int, what string) ([]byte, error) {
	b = append(b, '\n')
	if size := len(b) - start - 1; size > maxFrame {
		return nil, sdk.Errorf(sdk.CodeBadParams, "the %s of %d bytes is over the process protocol's line limit of %d bytes", what, size, maxFrame)
	}
	return b, nil
}

func (c *jsonCodec) readMessage(r *bufio.Reader) (message, error) {
	for {
		frag, err := r.ReadSlice('\n')
		if err == nil {
			line := frag[:len(frag)-1]
			if len(c.partial) > 0 {
				c.partial = append(c.partial, line...)
				line = c.partial
			}
			msg, perr := parseJSONMessage(line, c.version)
			c.partial = c.partial[:0]
			if cap(c.partial) > 64<<10 {
				c.partial = nil
			}
			return msg, perr
		}
		c.partial = append(c.partial, frag...)
		switch {
		case len(c.partial) > maxFrame:
			return message{}, protocolErrorf("a line longer than %d bytes (it starts %q)", maxFrame, clip(c.partial, 80))
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(c.partial) > 0:
			return message{}, protocolErrorf("stdout ended in the middle of a line: %q", clip(c.partial, 80))
		}
		return message{}, err
	}
}

// parseJSONMessage decodes one message line (without its newline).
func parseJSONMessage(line []byte, version int) (message, error) {
	m, err := parseJSONObject(line, sdk.MaxDepth+2)
	if err != nil {
		return message{}, protocolErrorf("a line that is not a JSON object of the protocol: %v (the line starts %q%s)", err, clip(line, 80), textHint(line))
	}
	var msg message
	kind, _ := m["t"].(string)
	if t, ok := m["t"]; ok {
		switch kind {
		case "result", "error", kindCall, kindCancel:
		default:
			return message{}, protocolErrorf("a message of unknown type %v", t)
		}
	}
	id, hasID := m["id"]
	if hasID {
		if msg.id, hasID = id.(int64); !hasID {
			return message{}, protocolErrorf(`"id" is %s, not an integer`, sdk.TypeName(id))
		}
	}
	switch res := m["result"].(type) {
	case nil:
	case map[string]any:
		msg.result = res
	default:
		return message{}, protocolErrorf(`"result" is %s, not an object`, sdk.TypeName(res))
	}
	if ev, ok := m["error"]; ok && ev != nil {
		em, ok := ev.(map[string]any)
		if !ok {
			return message{}, protocolErrorf(`"error" is %s, not an object`, sdk.TypeName(ev))
		}
		code, _ := em["code"].(string)
		text, _ := em["message"].(string)
		msg.err = &sdk.Error{Code: sdk.Code(code), Message: text}
	}
	var cf callFields
	if version >= 2 {
		for _, k := range []string{"parent", "target", "method", "params", "timeout_us"} {
			if v, ok := m[k]; ok {
				cf.set(k, v)
			}
		}
	}
	return finishMessage(msg, kind, hasID, version, &cf)
}

// readLine reads a line of at most limit bytes and returns it without its
// newline; the slice is valid until the next read.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			return nil, protocolErrorf("stdout ended in the middle of a line: %q", clip(line, 80))
		}
		return nil, err
	}
	buf := append([]byte(nil), line...)
	for {
		if len(buf) > limit {
			return nil, protocolErrorf("a line longer than %d bytes (it starts %q)", limit, clip(buf, 80))
		}
		line, err = r.ReadSlice('\n')
		buf = append(buf, line...)
		switch err {
		case nil:
			return buf[:len(buf)-1], nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return nil, protocolErrorf("stdout ended in the middle of a line: %q", clip(buf, 80))
		default:
			return nil, err
		}
	}
}

// textHint suggests the likeliest cause of text where a message should
// be: the module printing to stdout.
func textHint(b []byte) string {
	if len(b) == 0 || b[0] == '{' {
		return ""
	}
	for _, c := range b[:min(len(b), 4)] {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return ": text; does the module print to stdout? Only the protocol may go there: log to stderr"
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
