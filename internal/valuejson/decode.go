package valuejson

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hotmod/hotmod/sdk"
)

// A Decoder reads JSON text into the value model: objects become
// map[string]any, arrays []any, integer literals int64, other numbers
// float64. Every error is an *Error. The zero Decoder reads params or
// results as sdk.CheckParams accepts them.
type Decoder struct {
	// MaxDepth is the deepest level a value may sit at, counting the
	// top-level value as level 1. Zero means sdk.MaxDepth+1: an object
	// whose members nest sdk.MaxDepth deep, as sdk.CheckParams counts.
	MaxDepth int

	// BigIntegersAsFloats reads an integer literal outside int64 as a
	// float64 (99999999999999999999 → 1e20) instead of refusing it. The
	// HTTP API does, for clients that cannot tell the two apart; the
	// process protocol does not.
	BigIntegersAsFloats bool
}

// Decode reads one JSON value, with optional white space before it, from
// the start of data. It returns the value and n, the bytes it read: the
// caller decides what may follow (data[n:]).
func (d Decoder) Decode(data []byte) (v any, n int, err error) {
	p := parser{data: data, Decoder: d}
	if p.MaxDepth <= 0 {
		p.MaxDepth = sdk.MaxDepth + 1
	}
	p.space()
	v, err = p.value(1)
	if err != nil {
		return nil, 0, err
	}
	return v, p.off, nil
}

// DecodeObject reads data, one JSON object with optional white space
// around it, into a map.
func (d Decoder) DecodeObject(data []byte) (map[string]any, error) {
	p := parser{data: data}
	p.space()
	if p.off >= len(p.data) || p.data[p.off] != '{' {
		return nil, p.syntax(p.off, "want a JSON object")
	}
	v, n, err := d.Decode(data)
	if err != nil {
		return nil, err
	}
	p.off = n
	p.space()
	if p.off != len(p.data) {
		return nil, p.syntax(p.off, "unexpected data after the object")
	}
	return v.(map[string]any), nil
}

type parser struct {
	Decoder
	data []byte
	off  int // the next byte to read
}

// syntax is an ErrSyntax error found at the byte data[off].
func (p *parser) syntax(off int, format string, args ...any) error {
	return &Error{Offset: off + 1, Msg: fmt.Sprintf(format, args...), kinds: kindSyntax}
}

// eof is an error for text that ends in the middle of a value.
func (p *parser) eof(msg string) error {
	return &Error{Offset: len(p.data) + 1, Msg: msg, kinds: kindEOF}
}

// outside is an ErrOutside error found at the byte data[off].
func (p *parser) outside(off int, format string, args ...any) error {
	return &Error{Offset: off + 1, Msg: fmt.Sprintf(format, args...), kinds: kindOutside}
}

// unexpected is the error for the byte at p.off, which cannot be there.
func (p *parser) unexpected(where string) error {
	return p.syntax(p.off, "invalid character %q: unexpected character %s", p.data[p.off], where)
}

func (p *parser) space() {
	for p.off < len(p.data) {
		switch p.data[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

// value reads the value at p.off (after white space), at the given level.
func (p *parser) value(level int) (any, error) {
	p.space()
	if p.off >= len(p.data) {
		return nil, p.eof("unexpected end of input")
	}
	if level > p.MaxDepth {
		return nil, &Error{Offset: p.off + 1, kinds: kindTooDeep,
			Msg: fmt.Sprintf("objects and arrays nested deeper than %d levels", p.MaxDepth)}
	}
	switch c := p.data[p.off]; {
	case c == '{':
		return p.object(level)
	case c == '[':
		return p.array(level)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == 'N' || c == 'I':
		return nil, p.syntax(p.off, "NaN and Infinity are not JSON (in Python: json.dumps(..., allow_nan=False))")
	}
	return nil, p.unexpected("where a value should begin")
}

func (p *parser) literal(word string) error {
	for i := 0; i < len(word); i++ {
		if p.off >= len(p.data) {
			return p.eof("unexpected end of input in " + word)
		}
		if p.data[p.off] != word[i] {
			return p.unexpected("in " + word)
		}
		p.off++
	}
	return nil
}

func (p *parser) object(level int) (any, error) {
	p.off++ // {
	m := map[string]any{}
	p.space()
	if p.off < len(p.data) && p.data[p.off] == '}' {
		p.off++
		return m, nil
	}
	for {
		p.space()
		if p.off >= len(p.data) {
			return nil, p.eof("unexpected end of input in an object")
		}
		if p.data[p.off] != '"' {
			return nil, p.syntax(p.off, "want a string key")
		}
		keyOff := p.off
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, p.outside(keyOff, "the key %q is given twice", k)
		}
		p.space()
		if p.off >= len(p.data) {
			return nil, p.eof("unexpected end of input in an object")
		}
		if p.data[p.off] != ':' {
			return nil, p.syntax(p.off, "want ':' after a key")
		}
		p.off++
		v, err := p.value(level + 1)
		if err != nil {
			return nil, within(err, k)
		}
		m[k] = v
		p.space()
		if p.off >= len(p.data) {
			return nil, p.eof("unexpected end of input in an object")
		}
		switch p.data[p.off] {
		case ',':
			p.off++
		case '}':
			p.off++
			return m, nil
		default:
			return nil, p.syntax(p.off, "want ',' or '}' in an object")
		}
	}
}

func (p *parser) array(level int) (any, error) {
	p.off++ // [
	a := []any{}
	p.space()
	if p.off < len(p.data) && p.data[p.off] == ']' {
		p.off++
		return a, nil
	}
	for {
		v, err := p.value(level + 1)
		if err != nil {
			return nil, within(err, "["+strconv.Itoa(len(a))+"]")
		}
		a = append(a, v)
		p.space()
		if p.off >= len(p.data) {
			return nil, p.eof("unexpected end of input in an array")
		}
		switch p.data[p.off] {
		case ',':
			p.off++
		case ']':
			p.off++
			return a, nil
		default:
			return nil, p.syntax(p.off, "want ',' or ']' in an array")
		}
	}
}

// str reads a string; the fast path is one without escapes.
func (p *parser) str() (string, error) {
	start := p.off
	p.off++ // "
	for i := p.off; i < len(p.data); i++ {
		switch c := p.data[i]; {
		case c == '"':
			raw := p.data[p.off:i]
			if !utf8.Valid(raw) {
				return "", p.syntax(start, "a string is not valid UTF-8")
			}
			p.off = i + 1
			return string(raw), nil
		case c == '\\':
			return p.escapedStr(start)
		case c < 0x20:
			return "", p.syntax(i, "a control character in a string")
		}
	}
	return "", p.eof("a string does not end")
}

func (p *parser) escapedStr(start int) (string, error) {
	var b []byte
	i := p.off
	for i < len(p.data) {
		c := p.data[i]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", p.syntax(start, "a string is not valid UTF-8")
			}
			p.off = i + 1
			return string(b), nil
		case c < 0x20:
			return "", p.syntax(i, "a control character in a string")
		case c != '\\':
			b = append(b, c)
			i++
			continue
		}
		if i+1 >= len(p.data) {
			break
		}
		e := p.data[i+1]
		i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := hex4(p.data, i)
			if !ok {
				return "", p.syntax(i-2, `a \u escape without four hex digits`)
			}
			i += 4
			if utf16.IsSurrogate(r) {
				r2, ok := rune(0), false
				if i+6 <= len(p.data) && p.data[i] == '\\' && p.data[i+1] == 'u' {
					r2, ok = hex4(p.data, i+2)
				}
				if d := utf16.DecodeRune(r, r2); ok && d != utf8.RuneError {
					r = d
					i += 6
				} else {
					r = utf8.RuneError // a lone surrogate, as encoding/json reads it
				}
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", p.syntax(i-2, "an unknown escape \\%c", e)
		}
	}
	return "", p.eof("a string does not end")
}

func hex4(data []byte, i int) (rune, bool) {
	if i+4 > len(data) {
		return 0, false
	}
	var r rune
	for _, c := range data[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	return r, true
}

// number reads a number by JSON's grammar: an integer literal is an int64,
// anything with a fraction or an exponent a float64.
func (p *parser) number() (any, error) {
	start := p.off
	i := p.off
	digits := func() int {
		n := 0
		for i < len(p.data) && p.data[i] >= '0' && p.data[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if p.data[i] == '-' {
		i++
	}
	intStart := i
	if n := digits(); n == 0 {
		return nil, p.syntax(start, "a number without digits")
	} else if n > 1 && p.data[intStart] == '0' {
		return nil, p.syntax(start, "a number with a leading zero")
	}
	isFloat := false
	if i < len(p.data) && p.data[i] == '.' {
		i++
		isFloat = true
		if digits() == 0 {
			return nil, p.syntax(start, "a number without digits after '.'")
		}
	}
	if i < len(p.data) && (p.data[i] == 'e' || p.data[i] == 'E') {
		i++
		isFloat = true
		if i < len(p.data) && (p.data[i] == '+' || p.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, p.syntax(start, "a number without digits in its exponent")
		}
	}
	lit := string(p.data[start:i])
	p.off = i
	if !isFloat {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err == nil {
			return n, nil
		}
		if !p.BigIntegersAsFloats {
			return nil, p.outside(start, "the integer %s does not fit in int64 (write a float, with a fraction or an exponent, if a float is meant)", lit)
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return nil, p.outside(start, "%s is out of range for a 64-bit float", lit)
		}
		return nil, p.syntax(start, "the number %s: %v", lit, err)
	}
	return f, nil
}
