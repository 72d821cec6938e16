package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// Decoder decodes messages in one encoding and checks what the protocol
// requires of each: a known kind has an integer "id"; an error has its
// "error"; a call has its "method" and, from a child, an id from 1 to MaxID,
// an integer "parent" and a "target"; params, config and result are maps
// (or null, which is none). Keys it does not know are skipped. A message of
// a kind it does not know is returned with Kind Unknown and its Type: what
// to do with it is the receiver's decision.
//
// A Decoder is not safe for concurrent use; its zero value decodes CBOR
// from a host.
type Decoder struct {
	Encoding Encoding
	// FromChild: the messages are a child's (the host's Decoder).
	FromChild bool
	// Names, when set, interns method names: a name found in it is not
	// allocated again.
	Names map[string]string

	dec cbor.Decoder
}

// Decode decodes one message: a CBOR frame's body, or a JSON line when the
// Decoder's Encoding is JSON. Raw values in the Message alias body. A
// message that breaks the protocol is a *ProtocolError.
func (d *Decoder) Decode(body []byte) (Message, error) {
	if d.Encoding == JSON {
		return d.DecodeJSON(body)
	}
	return d.DecodeCBOR(body)
}

// DecodeCBOR is Decode for CBOR, whatever the Encoding. A program that
// speaks only CBOR (the Go SDK's child side) calls it rather than Decode,
// so that the JSON decoder is not linked into it.
func (d *Decoder) DecodeCBOR(body []byte) (Message, error) {
	var m Message
	var f fields
	if err := d.decodeCBOR(body, &m, &f); err != nil {
		return Message{}, err
	}
	if err := d.check(&m, &f); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DecodeJSON is Decode for JSON, whatever the Encoding.
func (d *Decoder) DecodeJSON(line []byte) (Message, error) {
	var m Message
	var f fields
	if err := d.decodeJSON(line, &m, &f); err != nil {
		return Message{}, err
	}
	if err := d.check(&m, &f); err != nil {
		return Message{}, err
	}
	return m, nil
}

// fields records which keys came, for check, and the first key whose value
// is of the wrong type: an error only when the key is one of the message's
// kind (a key of another kind is an unknown key, ignored).
type fields struct {
	hasT, hasError, hasMethod, hasTarget bool
	badKey                               string
	bad                                  error
}

func (f *fields) mistyped(key string, err error) {
	if f.bad == nil {
		f.badKey, f.bad = key, err
	}
}

// keyOf reports whether key belongs to messages of kind k.
func keyOf(k Kind, key string) bool {
	switch key {
	case "t", "id":
		return true
	case "method", "params", "timeout_us", "traceparent", "parent", "target":
		return k == Call
	case "config":
		return k == Init
	case "result":
		return k == Result
	case "error":
		return k == Error
	}
	return false
}

func (d *Decoder) check(m *Message, f *fields) error {
	switch {
	case f.bad != nil && (!f.hasT || keyOf(m.Kind, f.badKey)):
		return f.bad
	case !f.hasT:
		return Errorf(`a message without "t"`)
	case m.Kind == Unknown:
		return nil
	case !m.HasID:
		return Errorf(`a %q message without "id"`, m.Kind)
	}
	switch m.Kind {
	case Error:
		if !f.hasError {
			return Errorf(`an "error" message without "error"`)
		}
		m.Result = nil
	case Result:
		m.Err = nil
	case Call, Cancel:
		if d.FromChild && (m.ID <= 0 || m.ID > MaxID) {
			return Errorf(`a %q message with "id" %d (a child's ids are from 1 to 2^53-1)`, m.Kind, m.ID)
		}
		if m.Kind == Cancel {
			break
		}
		if d.FromChild {
			if !m.HasParent {
				return Errorf(`call %d has no integer "parent" (the id of the host's request it is made for)`, m.ID)
			}
			if !f.hasTarget || m.Target == "" {
				return Errorf(`call %d has no "target" (the module or capability to call)`, m.ID)
			}
		}
		if !f.hasMethod || m.Method == "" {
			return Errorf(`call %d has no "method"`, m.ID)
		}
	}
	return nil
}

func (d *Decoder) method(b []byte) string {
	if s, ok := d.Names[string(b)]; ok {
		return s
	}
	return string(b)
}

func timeoutOf(us int64) time.Duration {
	if us > 0 && us < math.MaxInt64/int64(time.Microsecond) {
		return time.Duration(us) * time.Microsecond
	}
	return 0
}

func (d *Decoder) decodeCBOR(body []byte, m *Message, f *fields) error {
	c := &d.dec
	c.Reset(body)
	defer c.Reset(nil)
	bad := func(err error) error {
		return Errorf("a message that is not a CBOR map of the protocol: %v", err)
	}
	n, err := c.ReadMapHeader()
	if err != nil {
		return bad(err)
	}
	for i := 0; n < 0 && !c.AtBreak() || i < n; i++ {
		key, err := c.ReadStringBytes()
		if err != nil {
			return bad(err)
		}
		switch string(key) {
		case "t":
			t, err := c.ReadStringBytes()
			if err != nil {
				return bad(fmt.Errorf(`"t": %v`, err))
			}
			f.hasT = true
			if m.Kind = kindOf(t); m.Kind == Unknown {
				m.Type = string(t)
			}
		case "id", "parent", "timeout_us":
			v, ok, err := cborInt(c, key, f)
			if err != nil {
				return err
			}
			switch {
			case !ok:
			case key[0] == 'i':
				m.ID, m.HasID = v, true
			case key[0] == 'p':
				m.Parent, m.HasParent = v, true
			default:
				m.Timeout = timeoutOf(v)
			}
		case "method", "target", "traceparent":
			if k, err := c.Peek(); err != nil {
				return bad(err)
			} else if k != cbor.KindString {
				f.mistyped(string(key), Errorf("%q is %s, not a string", key, k))
				if err := c.Skip(); err != nil {
					return bad(err)
				}
				continue
			}
			s, err := c.ReadStringBytes()
			if err != nil {
				return bad(err)
			}
			switch key[0] {
			case 'm':
				m.Method, f.hasMethod = d.method(s), true
			case 't':
				if len(key) == len("target") {
					m.Target, f.hasTarget = string(s), true
				} else {
					m.TraceParent = string(s)
				}
			}
		case "params", "config", "result":
			k, err := c.Peek()
			if err != nil {
				return bad(err)
			}
			start := c.Offset()
			if err := c.Skip(); err != nil {
				return bad(err)
			}
			if k != cbor.KindMap && k != cbor.KindNull {
				f.mistyped(string(key), Errorf("%q is %s, not a map", key, k))
				continue
			}
			var raw Raw
			if k == cbor.KindMap {
				raw = body[start:c.Offset():c.Offset()]
			}
			switch key[0] {
			case 'p':
				m.Params = raw
			case 'c':
				m.Config = raw
			default:
				m.Result = raw
			}
		case "error":
			if k, err := c.Peek(); err != nil {
				return bad(err)
			} else if k != cbor.KindMap {
				f.mistyped("error", Errorf(`"error" is %s, not a map`, k))
				if err := c.Skip(); err != nil {
					return bad(err)
				}
				continue
			}
			if m.Err, err = decodeCBORError(c); err != nil {
				return bad(fmt.Errorf(`"error": %v`, err))
			}
			f.hasError = true
		default:
			if err := c.Skip(); err != nil {
				return bad(err)
			}
		}
	}
	if n < 0 {
		if err := c.ReadBreak(); err != nil {
			return bad(err)
		}
	}
	if !c.Done() {
		return bad(fmt.Errorf("%d bytes after the map", len(body)-c.Offset()))
	}
	return nil
}

// cborInt reads an integer within int64; a value of another kind is
// skipped and noted in f (ok false).
func cborInt(c *cbor.Decoder, key []byte, f *fields) (v int64, ok bool, err error) {
	k, err := c.Peek()
	if err == nil && k != cbor.KindInt {
		f.mistyped(string(key), Errorf("%q is %s, not an integer", key, k))
		if err = c.Skip(); err == nil {
			return 0, false, nil
		}
	}
	if err == nil {
		v, err = c.ReadInt()
	}
	if err != nil {
		return 0, false, Errorf("a message that is not a CBOR map of the protocol: %q: %v", key, err)
	}
	return v, true, nil
}

func decodeCBORError(c *cbor.Decoder) (*ErrorBody, error) {
	n, err := c.ReadMapHeader()
	if err != nil {
		return nil, err
	}
	e := &ErrorBody{}
	for i := 0; n < 0 && !c.AtBreak() || i < n; i++ {
		key, err := c.ReadStringBytes()
		if err != nil {
			return nil, err
		}
		switch string(key) {
		case "code":
			if e.Code, err = c.ReadString(); err != nil {
				return nil, err
			}
		case "message":
			if e.Message, err = c.ReadString(); err != nil {
				return nil, err
			}
		default:
			if err := c.Skip(); err != nil {
				return nil, err
			}
		}
	}
	if n < 0 {
		if err := c.ReadBreak(); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// decodeJSON reads the envelope: the line is checked to be one JSON value
// (json.Valid, which allocates nothing), then its members are scanned in
// place. Keys match exactly (not case-insensitively, as encoding/json's
// struct fields would), a key of the protocol may not come twice, and
// values stay raw (the receiver decodes them with the value model's rules).
func (d *Decoder) decodeJSON(line []byte, m *Message, f *fields) error {
	bad := func(err error) error {
		return Errorf("a line that is not a JSON object of the protocol: %v (the line starts %q%s)", err, clip(line, 80), TextHint(line))
	}
	if depth := jsonDepth(line); depth > MaxDepth {
		return bad(fmt.Errorf("nested deeper than %d", MaxDepth))
	}
	if !json.Valid(line) {
		var v json.RawMessage
		err := json.Unmarshal(line, &v)
		if err == nil {
			err = errors.New("not one JSON value")
		}
		return bad(err)
	}
	if i := skipSpace(line, 0); line[i] != '{' {
		return bad(fmt.Errorf("want a JSON object, found %s", jsonKind(line[i:])))
	}
	var seen uint16
	return members(line, func(key string, raw []byte) error {
		if bit := jsonKeys[key]; bit != 0 {
			if seen&bit != 0 {
				return bad(fmt.Errorf("the key %q is given twice", key))
			}
			seen |= bit
		}
		switch key {
		case "t":
			t, ok := jsonString(raw)
			if !ok {
				return Errorf(`"t" is %s, not a string`, jsonKind(raw))
			}
			f.hasT = true
			if m.Kind = kindOf([]byte(t)); m.Kind == Unknown {
				m.Type = t
			}
		case "id", "parent", "timeout_us":
			v, ok := jsonInt(raw, key, f)
			switch {
			case !ok:
			case key == "id":
				m.ID, m.HasID = v, true
			case key == "parent":
				m.Parent, m.HasParent = v, true
			default:
				m.Timeout = timeoutOf(v)
			}
		case "method", "target", "traceparent":
			s, ok := jsonString(raw)
			if !ok {
				f.mistyped(key, Errorf("%q is %s, not a string", key, jsonKind(raw)))
				return nil
			}
			switch key {
			case "method":
				m.Method, f.hasMethod = d.method([]byte(s)), true
			case "target":
				m.Target, f.hasTarget = s, true
			default:
				m.TraceParent = s
			}
		case "params", "config", "result":
			var v Raw
			switch raw[0] {
			case 'n':
			case '{':
				v = Raw(raw)
			default:
				f.mistyped(key, Errorf("%q is %s, not a map", key, jsonKind(raw)))
				return nil
			}
			switch key {
			case "params":
				m.Params = v
			case "config":
				m.Config = v
			default:
				m.Result = v
			}
		case "error":
			switch raw[0] {
			case 'n':
				return nil
			case '{':
			default:
				f.mistyped(key, Errorf(`"error" is %s, not a map`, jsonKind(raw)))
				return nil
			}
			e := &ErrorBody{}
			members(raw, func(k string, v []byte) error {
				switch k {
				case "code":
					e.Code, _ = jsonString(v) // not a string: no code
				case "message":
					e.Message, _ = jsonString(v)
				}
				return nil
			})
			m.Err, f.hasError = e, true
		}
		return nil
	})
}

// members calls fn with each member of the JSON object obj (valid JSON,
// white space allowed around it): its key, unquoted, and its value, raw.
func members(obj []byte, fn func(key string, raw []byte) error) error {
	i := skipSpace(obj, 0) + 1 // past '{'
	for {
		i = skipSpace(obj, i)
		switch obj[i] {
		case '}':
			return nil
		case ',':
			i = skipSpace(obj, i+1)
		}
		end := skipString(obj, i)
		key, _ := jsonString(obj[i:end])
		i = skipSpace(obj, end) + 1 // past ':'
		i = skipSpace(obj, i)
		end = skipValue(obj, i)
		if err := fn(key, obj[i:end]); err != nil {
			return err
		}
		i = end
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the end of the string that starts at b[i].
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(b)
}

// skipValue returns the end of the (valid) value that starts at b[i].
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			i = skipString(b, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// jsonString unquotes a raw JSON string; ok is false for another kind of
// value. Invalid UTF-8 becomes U+FFFD, as encoding/json makes it.
func jsonString(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return strings.ToValidUTF8(string(body), "\uFFFD"), true
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// jsonKeys are the keys of the protocol, each a bit.
var jsonKeys = map[string]uint16{
	"t": 1 << 0, "id": 1 << 1, "method": 1 << 2, "params": 1 << 3, "config": 1 << 4, "result": 1 << 5,
	"error": 1 << 6, "timeout_us": 1 << 7, "traceparent": 1 << 8, "parent": 1 << 9, "target": 1 << 10,
}

// jsonInt reads an integer literal within int64 (no fraction, no
// exponent). A value of another kind is noted in f (ok false).
func jsonInt(raw []byte, key string, f *fields) (v int64, ok bool) {
	if kind := jsonKind(raw); kind != "integer" {
		f.mistyped(key, Errorf("%q is %s, not an integer", key, kind))
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		f.mistyped(key, Errorf("%q is %s, an integer outside int64", key, raw))
		return 0, false
	}
	return v, true
}

// jsonKind names the kind of a raw JSON value in errors, as cbor.Kind
// names them.
func jsonKind(raw []byte) string {
	switch raw[0] {
	case '{':
		return "map"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	if bytes.ContainsAny(raw, ".eE") {
		return "float"
	}
	return "integer"
}

// jsonDepth is how deeply the line's arrays and objects nest (strings
// skipped), so that a deep line is refused before encoding/json recurses.
func jsonDepth(line []byte) int {
	depth, most := 0, 0
	in := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if in {
			switch c {
			case '\\':
				i++
			case '"':
				in = false
			}
			continue
		}
		switch c {
		case '"':
			in = true
		case '{', '[':
			if depth++; depth > most {
				most = depth
			}
		case '}', ']':
			depth--
		}
	}
	return most
}
