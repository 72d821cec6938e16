package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hotmod/hotmod/sdk"
)

// example is the params object error messages suggest.
const example = `{"name":"Ada"}`

// DecodeParams reads a request body as a call's params: one JSON object, or
// an empty body for no params. Numbers become int64 when written as integer
// literals that fit (1, -7), float64 otherwise (1.5, 1e3, 2.0,
// 99999999999999999999), nested too. Errors are bad_params and say what to
// send instead.
func DecodeParams(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, malformed(err)
	}
	if rest := bytes.TrimSpace(body[dec.InputOffset():]); len(rest) > 0 {
		return nil, sdk.Errorf(sdk.CodeBadParams,
			"unexpected data after the params object at byte %d: send exactly one JSON object, e.g. %s", dec.InputOffset(), example)
	}
	params, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.Errorf(sdk.CodeBadParams,
			"params must be a JSON object, not %s: send e.g. %s, or an empty body for no params", jsonKind(v), example)
	}
	for k, e := range params {
		n, err := numbers(e, k, 1)
		if err != nil {
			return nil, err
		}
		params[k] = n
	}
	return params, nil
}

func malformed(err error) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return sdk.Errorf(sdk.CodeBadParams, "malformed JSON at byte %d: %v: send a JSON object of params, e.g. %s", syn.Offset, syn, example)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return sdk.Errorf(sdk.CodeBadParams, "malformed JSON: the body ends in the middle of a value: send a complete JSON object, e.g. %s", example)
	}
	return sdk.Errorf(sdk.CodeBadParams, "malformed JSON: %v: send a JSON object of params, e.g. %s", err, example)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// numbers replaces every json.Number in v (in place for maps and slices)
// with an int64 or a float64, and enforces sdk.MaxDepth. path names v in
// errors the way sdk.CheckParams does ("items[2].price").
func numbers(v any, path string, depth int) (any, error) {
	if depth > sdk.MaxDepth {
		return nil, sdk.Errorf(sdk.CodeBadParams, "%s: nested deeper than %d levels", path, sdk.MaxDepth)
	}
	switch x := v.(type) {
	case json.Number:
		return number(string(x), path)
	case map[string]any:
		for k, e := range x {
			n, err := numbers(e, path+"."+k, depth+1)
			if err != nil {
				return nil, err
			}
			x[k] = n
		}
	case []any:
		for i, e := range x {
			n, err := numbers(e, path+"["+strconv.Itoa(i)+"]", depth+1)
			if err != nil {
				return nil, err
			}
			x[i] = n
		}
	}
	return v, nil
}

// number converts a JSON number literal: an integer literal that fits is an
// int64, anything else a float64.
func number(lit, path string) (any, error) {
	if !strings.ContainsAny(lit, ".eE") {
		if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return i, nil
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return nil, sdk.Errorf(sdk.CodeBadParams, "%s: %s is out of range for a 64-bit float", path, lit)
	}
	return f, nil
}

// encodeResult checks that a method's result is made of value-model types
// (sdk.CheckParams) and writes it as JSON followed by a newline. A nil map
// is written as {}. See the package doc for how numbers and []byte are
// written.
//
// Why not encoding/json? It writes float64(2) as "2", which a client reads
// back as an integer; the value model keeps the two apart.
func encodeResult(out map[string]any) ([]byte, error) {
	if err := sdk.CheckParams(out); err != nil {
		return nil, errors.New(sdk.AsError(err).Message)
	}
	b, err := appendValue(make([]byte, 0, 256), out, "")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func appendValue(b []byte, v any, path string) ([]byte, error) {
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
	case uint:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float64:
		return appendFloat(b, x, 64, path)
	case float32:
		return appendFloat(b, float64(x), 32, path)
	case string:
		return appendString(b, x), nil
	case []byte:
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, x)
		return append(b, '"'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e, path+"["+strconv.Itoa(i)+"]"); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			p := k
			if path != "" {
				p = path + "." + k
			}
			var err error
			if b, err = appendValue(b, x[k], p); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	}
	// sdk.CheckParams ran first, so this is a type it accepts and we forgot.
	return nil, fmt.Errorf("%s: %T cannot be written as JSON", path, v)
}

// appendFloat writes f as encoding/json does, plus ".0" when that would
// read back as an integer.
func appendFloat(b []byte, f float64, bits int, path string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s: %v has no JSON form: return a string or null instead", path, f)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
		bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21)) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// 1e-07 → 1e-7, as encoding/json writes it.
		if n := len(b); n-start >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
		return b, nil
	}
	if !bytes.ContainsAny(b[start:], ".eE") {
		b = append(b, ".0"...)
	}
	return b, nil
}

// appendString writes s as a JSON string. Unlike encoding/json it leaves <,
// > and & alone (nothing here is embedded in HTML); invalid UTF-8 becomes
// U+FFFD, and U+2028/U+2029 are escaped so the output is valid JavaScript.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
