package wire

import (
	"encoding/binary"
	"strconv"
	"unicode/utf8"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// Append appends m's whole frame (CBOR) or line (JSON) to b. It writes the
// keys m's kind has: a call's method, params ({} when nil), timeout_us
// (when Timeout > 0), traceparent (when set), and parent and target (when
// HasParent: a child's call); an init's config (null when nil); a result's
// result (left out when nil); an error's error. Raw values must be in enc
// and are copied as they are. A message over MaxFrame is a *TooLargeError;
// b is then unusable.
func Append(b []byte, enc Encoding, m *Message) ([]byte, error) {
	if enc == JSON {
		return appendJSON(b, m)
	}
	return appendCBOR(b, m)
}

func appendCBOR(b []byte, m *Message) ([]byte, error) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	n := 2
	switch m.Kind {
	case Call:
		n += 2
		if m.HasParent {
			n += 2
		}
		if m.Timeout > 0 {
			n++
		}
		if m.TraceParent != "" {
			n++
		}
	case Init, Error:
		n++
	case Result:
		if m.Result != nil {
			n++
		}
	}
	b = cbor.AppendMapHeader(b, n)
	b = append(b, 0x61, 't')
	b = cbor.AppendString(b, m.Kind.String())
	b = append(b, 0x62, 'i', 'd')
	b = cbor.AppendInt(b, m.ID)
	switch m.Kind {
	case Call:
		if m.HasParent {
			b = cbor.AppendString(b, "parent")
			b = cbor.AppendInt(b, m.Parent)
			b = cbor.AppendString(b, "target")
			b = cbor.AppendString(b, valid(m.Target))
		}
		b = cbor.AppendString(b, "method")
		b = cbor.AppendString(b, valid(m.Method))
		b = cbor.AppendString(b, "params")
		if m.Params == nil {
			b = cbor.AppendMapHeader(b, 0)
		} else {
			b = append(b, m.Params...)
		}
		if m.Timeout > 0 {
			b = cbor.AppendString(b, "timeout_us")
			b = cbor.AppendInt(b, TimeoutMicros(m.Timeout))
		}
		if m.TraceParent != "" {
			b = cbor.AppendString(b, "traceparent")
			b = cbor.AppendString(b, valid(m.TraceParent))
		}
	case Init:
		b = cbor.AppendString(b, "config")
		if m.Config == nil {
			b = cbor.AppendNull(b)
		} else {
			b = append(b, m.Config...)
		}
	case Result:
		if m.Result != nil {
			b = cbor.AppendString(b, "result")
			b = append(b, m.Result...)
		}
	case Error:
		b = appendCBORError(b, m.Err)
	}
	size := len(b) - start - 4
	if size > MaxFrame {
		return nil, &TooLargeError{Kind: m.Kind, Size: size}
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}

func appendCBORError(b []byte, e *ErrorBody) []byte {
	if e == nil {
		e = &ErrorBody{}
	}
	b = cbor.AppendString(b, "error")
	b = cbor.AppendMapHeader(b, 2)
	b = cbor.AppendString(b, "code")
	b = cbor.AppendString(b, valid(e.Code))
	b = cbor.AppendString(b, "message")
	return cbor.AppendString(b, valid(e.Message))
}

func appendJSON(b []byte, m *Message) ([]byte, error) {
	start := len(b)
	b = append(b, `{"t":"`...)
	b = append(b, m.Kind.String()...)
	b = append(b, `","id":`...)
	b = strconv.AppendInt(b, m.ID, 10)
	switch m.Kind {
	case Call:
		if m.HasParent {
			b = append(b, `,"parent":`...)
			b = strconv.AppendInt(b, m.Parent, 10)
			b = append(b, `,"target":`...)
			b = AppendJSONString(b, m.Target)
		}
		b = append(b, `,"method":`...)
		b = AppendJSONString(b, m.Method)
		b = append(b, `,"params":`...)
		if m.Params == nil {
			b = append(b, "{}"...)
		} else {
			b = append(b, m.Params...)
		}
		if m.Timeout > 0 {
			b = append(b, `,"timeout_us":`...)
			b = strconv.AppendInt(b, TimeoutMicros(m.Timeout), 10)
		}
		if m.TraceParent != "" {
			b = append(b, `,"traceparent":`...)
			b = AppendJSONString(b, m.TraceParent)
		}
	case Init:
		b = append(b, `,"config":`...)
		if m.Config == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, m.Config...)
		}
	case Result:
		if m.Result != nil {
			b = append(b, `,"result":`...)
			b = append(b, m.Result...)
		}
	case Error:
		e := m.Err
		if e == nil {
			e = &ErrorBody{}
		}
		b = append(b, `,"error":{"code":`...)
		b = AppendJSONString(b, e.Code)
		b = append(b, `,"message":`...)
		b = AppendJSONString(b, e.Message)
		b = append(b, '}')
	}
	b = append(b, '}', '\n')
	if size := len(b) - start - 1; size > MaxFrame {
		return nil, &TooLargeError{Kind: m.Kind, Size: size}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// AppendJSONString appends s as a JSON string; invalid UTF-8 becomes
// U+FFFD. Control characters, '"' and '\\' are escaped, and U+2028 and
// U+2029 too (JavaScript's line terminators); nothing else is.
func AppendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
