package process

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
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

	// The protocol versions this host speaks.
	minVersion = 1
	maxVersion = 1

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
}

// reply is one message from a child: a result or an error for a request.
type reply struct {
	id     int64
	result map[string]any // nil when the reply carries none
	err    *sdk.Error     // set for an error reply
}

// codec writes requests and reads replies in one encoding. Its reading
// side belongs to whichever goroutine holds the child's reader role.
type codec interface {
	// appendRequest appends req's whole frame to b. An error is the params'
	// (a bad_params *sdk.Error); b is then unusable.
	appendRequest(b []byte, req request) ([]byte, error)
	// readReply reads the next reply. A malformed one is a *protocolError;
	// other errors are the pipe's. After a timeout (a read deadline, which
	// may strike in the middle of a message), calling it again resumes
	// where it stopped.
	readReply(r *bufio.Reader) (reply, error)
}

func codecFor(encoding string) codec {
	if encoding == encJSON {
		return &jsonCodec{}
	}
	return &cborCodec{}
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
	size := len(b) - start - 4
	if size > maxFrame {
		return nil, sdk.Errorf(sdk.CodeBadParams, "the request of %d bytes is over the process protocol's frame limit of %d bytes", size, maxFrame)
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

// timeoutMicros rounds up, so that a call never gets less time than it has.
func timeoutMicros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

func (c *cborCodec) readReply(r *bufio.Reader) (reply, error) {
	for c.got < 4 {
		n, err := r.Read(c.hdr[c.got:])
		c.got += n
		if err != nil {
			if err == io.EOF && c.got > 0 {
				return reply{}, protocolErrorf("stdout ended in the middle of a frame header")
			}
			return reply{}, err
		}
		if c.got == 4 {
			size := binary.BigEndian.Uint32(c.hdr[:])
			if size == 0 || size > maxFrame {
				c.got = 0
				return reply{}, protocolErrorf("a frame header announces %d bytes (1 to %d allowed; the bytes were %q%s)", size, maxFrame, c.hdr[:], textHint(c.hdr[:]))
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
				return reply{}, protocolErrorf("stdout ended in the middle of a frame of %d bytes", c.size)
			}
			return reply{}, err
		}
	}
	c.got = 0
	rep, err := c.parseReply(body)
	if c.size > 64<<10 {
		c.body = nil // do not keep the odd huge frame alive
	}
	return rep, err
}

// parseReply decodes a reply map; unknown keys are skipped.
func (c *cborCodec) parseReply(body []byte) (rep reply, err error) {
	d := &c.dec
	d.Reset(body)
	defer d.Reset(nil)
	bad := func(err error) (reply, error) {
		return reply{}, protocolErrorf("a reply that is not a CBOR map of the protocol: %v", err)
	}
	n, err := d.ReadMapHeader()
	if err != nil {
		return bad(err)
	}
	var kind string
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
			default:
				return reply{}, protocolErrorf("a message of unknown type %q", t)
			}
		case "id":
			if rep.id, err = d.ReadInt(); err != nil {
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
				rep.result, _ = v.(map[string]any)
			default:
				err = fmt.Errorf("the result is %s, not a map", k)
			}
			if err != nil {
				return bad(err)
			}
		case "error":
			if rep.err, err = readCBORError(d); err != nil {
				return bad(err)
			}
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
	return finishReply(rep, kind, hasID)
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

// finishReply checks what every reply needs, whatever its encoding.
func finishReply(rep reply, kind string, hasID bool) (reply, error) {
	switch {
	case kind == "":
		return reply{}, protocolErrorf(`a message without "t"`)
	case !hasID:
		return reply{}, protocolErrorf(`a %q message without "id"`, kind)
	case kind == "error" && rep.err == nil:
		return reply{}, protocolErrorf(`an "error" message without "error"`)
	case kind == "result":
		rep.err = nil
	}
	if rep.err != nil {
		rep.result = nil
		rep.err = knownCode(rep.err)
	}
	return rep, nil
}

// knownCode keeps a child's error code when it is one of hotmod's, and
// makes any other a module_error that names it.
func knownCode(e *sdk.Error) *sdk.Error {
	switch e.Code {
	case sdk.CodeUnknownModule, sdk.CodeUnknownMethod, sdk.CodeBadParams, sdk.CodeTimeout, sdk.CodePanic,
		sdk.CodeNotActive, sdk.CodeIncompatible, sdk.CodeInternal, sdk.CodeModule:
		return e
	}
	if e.Code == "" {
		return &sdk.Error{Code: sdk.CodeModule, Message: e.Message}
	}
	return &sdk.Error{Code: sdk.CodeModule, Message: string(e.Code) + ": " + e.Message}
}

// jsonCodec: one JSON object per line.
type jsonCodec struct {
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
	case kindInit:
		b = append(b, `,"config":`...)
		if b, err = appendJSON(b, req.params, "config", 0); err != nil {
			return nil, err
		}
	}
	b = append(b, '}', '\n')
	if size := len(b) - start - 1; size > maxFrame {
		return nil, sdk.Errorf(sdk.CodeBadParams, "the request of %d bytes is over the process protocol's line limit of %d bytes", size, maxFrame)
	}
	return b, nil
}

func (c *jsonCodec) readReply(r *bufio.Reader) (reply, error) {
	for {
		frag, err := r.ReadSlice('\n')
		if err == nil {
			line := frag[:len(frag)-1]
			if len(c.partial) > 0 {
				c.partial = append(c.partial, line...)
				line = c.partial
			}
			rep, perr := parseJSONReply(line)
			c.partial = c.partial[:0]
			if cap(c.partial) > 64<<10 {
				c.partial = nil
			}
			return rep, perr
		}
		c.partial = append(c.partial, frag...)
		switch {
		case len(c.partial) > maxFrame:
			return reply{}, protocolErrorf("a line longer than %d bytes (it starts %q)", maxFrame, clip(c.partial, 80))
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(c.partial) > 0:
			return reply{}, protocolErrorf("stdout ended in the middle of a line: %q", clip(c.partial, 80))
		}
		return reply{}, err
	}
}

// parseJSONReply decodes one reply line (without its newline).
func parseJSONReply(line []byte) (reply, error) {
	m, err := parseJSONObject(line, sdk.MaxDepth+2)
	if err != nil {
		return reply{}, protocolErrorf("a line that is not a JSON object of the protocol: %v (the line starts %q%s)", err, clip(line, 80), textHint(line))
	}
	var rep reply
	kind, _ := m["t"].(string)
	if _, ok := m["t"]; ok && kind != "result" && kind != "error" {
		return reply{}, protocolErrorf("a message of unknown type %v", m["t"])
	}
	id, hasID := m["id"]
	if hasID {
		if rep.id, hasID = id.(int64); !hasID {
			return reply{}, protocolErrorf(`"id" is %s, not an integer`, sdk.TypeName(id))
		}
	}
	switch res := m["result"].(type) {
	case nil:
	case map[string]any:
		rep.result = res
	default:
		return reply{}, protocolErrorf(`"result" is %s, not an object`, sdk.TypeName(res))
	}
	if ev, ok := m["error"]; ok && ev != nil {
		em, ok := ev.(map[string]any)
		if !ok {
			return reply{}, protocolErrorf(`"error" is %s, not an object`, sdk.TypeName(ev))
		}
		code, _ := em["code"].(string)
		msg, _ := em["message"].(string)
		rep.err = &sdk.Error{Code: sdk.Code(code), Message: msg}
	}
	return finishReply(rep, kind, hasID)
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
