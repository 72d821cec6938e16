package process

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/hotmod/hotmod/sdk"
)

// The JSON encoding of the value model, for children that speak the text
// mode (see docs/process-protocol.md, "Numbers and bytes in JSON"):
//
//   - an integer is written as an integer literal (no fraction, no exponent)
//     and read back as an int64; a literal outside int64 is an error, never
//     a float;
//   - a float always has a fraction or an exponent (2.0, 1e+21) and is read
//     back as a float64; NaN and ±Inf cannot be written (JSON has no
//     literals for them);
//   - []byte is written as a standard base64 string (the child reads a
//     string: JSON has no bytes);
//   - objects may not repeat a key, and nest at most sdk.MaxDepth deep.
//
// Why not encoding/json? It writes float64(2) as 2, which every reader takes
// for an integer, and reads every number as a float64 (or a json.Number to
// convert by hand); it accepts duplicate keys silently. This file is the
// value model's JSON, and nothing else, in both directions.

// appendJSON appends v as JSON. path names v in errors ("params.items[2]").
func appendJSON(b []byte, v any, path string, depth int) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return nil, valueError(path, "%d does not fit in int64", x)
		}
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, valueError(path, "%d does not fit in int64", x)
		}
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		return appendJSONFloat(b, x, 64, path)
	case float32:
		return appendJSONFloat(b, float64(x), 32, path)
	case string:
		if !utf8.ValidString(x) {
			return nil, valueError(path, "the string is not valid UTF-8")
		}
		return appendJSONString(b, x), nil
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), nil
	case []any:
		if depth >= sdk.MaxDepth {
			return nil, valueError(path, "nested deeper than %d levels", sdk.MaxDepth)
		}
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		if depth >= sdk.MaxDepth {
			return nil, valueError(path, "nested deeper than %d levels", sdk.MaxDepth)
		}
		b = append(b, '{')
		first := true
		for k, e := range x {
			if !first {
				b = append(b, ',')
			}
			first = false
			if !utf8.ValidString(k) {
				return nil, valueError(path, "a key is not valid UTF-8")
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, e, path+"."+k, depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	return nil, valueError(path, "%T is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)", v)
}

func valueError(path, format string, args ...any) error {
	return sdk.Errorf(sdk.CodeBadParams, "%s: %s", path, fmt.Sprintf(format, args...))
}

// appendJSONFloat writes a float with a fraction or an exponent, so that it
// reads back as a float.
func appendJSONFloat(b []byte, f float64, bits int, path string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, valueError(path, "%v cannot be sent to a module that speaks JSON (JSON has no NaN or infinities)", f)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, bits)
	for _, c := range b[start:] {
		if c == '.' || c == 'e' {
			return b, nil
		}
	}
	return append(b, ".0"...), nil
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s (valid UTF-8) as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
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
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// jsonParser reads one JSON text of the value model.
type jsonParser struct {
	data     []byte
	off      int
	maxDepth int
}

// parseJSONObject reads data, one JSON object with optional white space
// around it, into a map.
func parseJSONObject(data []byte, maxDepth int) (map[string]any, error) {
	p := jsonParser{data: data, maxDepth: maxDepth}
	p.space()
	if p.off >= len(p.data) || p.data[p.off] != '{' {
		return nil, p.errorf("want a JSON object")
	}
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.off != len(p.data) {
		return nil, p.errorf("unexpected data after the object")
	}
	return v.(map[string]any), nil
}

// jsonError is a syntax error with the byte offset where it was found.
type jsonError struct {
	off int
	msg string
}

func (e *jsonError) Error() string { return "byte " + strconv.Itoa(e.off) + ": " + e.msg }

func (p *jsonParser) errorf(format string, args ...any) error {
	return &jsonError{off: p.off, msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) space() {
	for p.off < len(p.data) {
		switch p.data[p.off] {
		case ' ', '\t', '\n', '\r':
			p.off++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	p.space()
	if p.off >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.off]; {
	case c == '{':
		if depth >= p.maxDepth {
			return nil, p.errorf("objects and arrays nested deeper than %d levels", p.maxDepth)
		}
		return p.object(depth + 1)
	case c == '[':
		if depth >= p.maxDepth {
			return nil, p.errorf("objects and arrays nested deeper than %d levels", p.maxDepth)
		}
		return p.array(depth + 1)
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
		return nil, p.errorf("NaN and Infinity are not JSON (in Python: json.dumps(..., allow_nan=False))")
	}
	return nil, p.errorf("unexpected character %q", p.data[p.off])
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.off < len(word) || string(p.data[p.off:p.off+len(word)]) != word {
		return p.errorf("unexpected character %q", p.data[p.off])
	}
	p.off += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	p.off++ // {
	m := map[string]any{}
	p.space()
	if p.off < len(p.data) && p.data[p.off] == '}' {
		p.off++
		return m, nil
	}
	for {
		p.space()
		if p.off >= len(p.data) || p.data[p.off] != '"' {
			return nil, p.errorf("want a string key")
		}
		keyOff := p.off
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, &jsonError{off: keyOff, msg: fmt.Sprintf("the key %q is given twice", k)}
		}
		p.space()
		if p.off >= len(p.data) || p.data[p.off] != ':' {
			return nil, p.errorf("want ':' after a key")
		}
		p.off++
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		p.space()
		if p.off >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.data[p.off] {
		case ',':
			p.off++
		case '}':
			p.off++
			return m, nil
		default:
			return nil, p.errorf("want ',' or '}' in an object")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.off++ // [
	a := []any{}
	p.space()
	if p.off < len(p.data) && p.data[p.off] == ']' {
		p.off++
		return a, nil
	}
	for {
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.space()
		if p.off >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.off] {
		case ',':
			p.off++
		case ']':
			p.off++
			return a, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

// str reads a string; the fast path is one without escapes.
func (p *jsonParser) str() (string, error) {
	start := p.off
	p.off++ // "
	i := p.off
	for i < len(p.data) {
		c := p.data[i]
		if c == '"' {
			raw := p.data[p.off:i]
			if !utf8.Valid(raw) {
				return "", &jsonError{off: start, msg: "a string is not valid UTF-8"}
			}
			p.off = i + 1
			return string(raw), nil
		}
		if c == '\\' {
			return p.escapedStr(start)
		}
		if c < 0x20 {
			return "", &jsonError{off: i, msg: "a control character in a string"}
		}
		i++
	}
	return "", &jsonError{off: start, msg: "a string does not end"}
}

func (p *jsonParser) escapedStr(start int) (string, error) {
	var b []byte
	i := p.off
	for i < len(p.data) {
		c := p.data[i]
		switch {
		case c == '"':
			if !utf8.Valid(b) {
				return "", &jsonError{off: start, msg: "a string is not valid UTF-8"}
			}
			p.off = i + 1
			return string(b), nil
		case c < 0x20:
			return "", &jsonError{off: i, msg: "a control character in a string"}
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
				return "", &jsonError{off: i - 2, msg: `a \u escape without four hex digits`}
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
			return "", &jsonError{off: i - 2, msg: fmt.Sprintf("an unknown escape \\%c", e)}
		}
	}
	return "", &jsonError{off: start, msg: "a string does not end"}
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
func (p *jsonParser) number() (any, error) {
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
		return nil, &jsonError{off: start, msg: "a number without digits"}
	} else if n > 1 && p.data[intStart] == '0' {
		return nil, &jsonError{off: start, msg: "a number with a leading zero"}
	}
	isFloat := false
	if i < len(p.data) && p.data[i] == '.' {
		i++
		isFloat = true
		if digits() == 0 {
			return nil, &jsonError{off: start, msg: "a number without digits after '.'"}
		}
	}
	if i < len(p.data) && (p.data[i] == 'e' || p.data[i] == 'E') {
		i++
		isFloat = true
		if i < len(p.data) && (p.data[i] == '+' || p.data[i] == '-') {
			i++
		}
		if digits() == 0 {
			return nil, &jsonError{off: start, msg: "a number without digits in its exponent"}
		}
	}
	lit := string(p.data[start:i])
	p.off = i
	if !isFloat {
		n, err := strconv.ParseInt(lit, 10, 64)
		if err != nil {
			return nil, &jsonError{off: start, msg: fmt.Sprintf("the integer %s does not fit in int64 (write a float, with a fraction or an exponent, if a float is meant)", lit)}
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && ne.Err == strconv.ErrRange {
			return nil, &jsonError{off: start, msg: fmt.Sprintf("the float %s is out of range for float64", lit)}
		}
		return nil, &jsonError{off: start, msg: fmt.Sprintf("the float %s: %v", lit, err)}
	}
	return f, nil
}
