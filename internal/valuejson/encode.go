package valuejson

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/hotmod/hotmod/sdk"
	"github.com/hotmod/hotmod/sdk/wire"
)

// Append appends v as JSON to b. path names v in errors ("params"; "" for
// a result, whose keys then start the paths: "items[2].price").
//
// It refuses, with an *Error, whatever sdk.CheckParams refuses (a Go type
// outside the value model, an unsigned integer outside int64, nesting
// deeper than sdk.MaxDepth below v), with the same message, and also NaN
// and ±Inf (ErrNonFinite) and strings or keys that are not valid UTF-8.
// Go's other integer and float types are written as int64 and float64 are.
func Append(b []byte, v any, path string) ([]byte, error) {
	return appendValue(b, v, path, 0)
}

func appendValue(b []byte, v any, path string, depth int) ([]byte, error) {
	if depth > sdk.MaxDepth {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("nested deeper than %d levels", sdk.MaxDepth), kinds: kindTooDeep}
	}
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
		return appendUint(b, uint64(x), v, path)
	case uint64:
		return appendUint(b, x, v, path)
	case float64:
		return appendFloat(b, x, 64, v, path)
	case float32:
		return appendFloat(b, float64(x), 32, v, path)
	case string:
		if !utf8.ValidString(x) {
			return nil, &Error{Path: path, Msg: "the string is not valid UTF-8", Value: v, kinds: kindOutside}
		}
		return AppendString(b, x), nil
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
			if b, err = appendValue(b, e, element(path, i), depth+1); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case map[string]any:
		return appendObject(b, x, path, depth)
	}
	return nil, &Error{Path: path, Value: v, kinds: kindOutside,
		Msg: fmt.Sprintf("%T is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)", v)}
}

func appendUint(b []byte, u uint64, v any, path string) ([]byte, error) {
	if u > math.MaxInt64 {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%d does not fit in int64", u), Value: v, kinds: kindOutside}
	}
	return strconv.AppendUint(b, u, 10), nil
}

// appendObject writes m with its keys sorted, so that one value is always
// one text.
func appendObject(b []byte, m map[string]any, path string, depth int) ([]byte, error) {
	var buf [16]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		if !utf8.ValidString(k) {
			return nil, &Error{Path: path, Msg: fmt.Sprintf("the key %q is not valid UTF-8", k), Value: k, kinds: kindOutside}
		}
		b = AppendString(b, k)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, m[k], member(path, k), depth+1); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendFloat writes f as encoding/json does (shortest form; an exponent
// below 1e-6 and from 1e21), plus ".0" when that would read back as an
// integer.
func appendFloat(b []byte, f float64, bits int, v any, path string) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%v has no JSON form", f), Value: v, kinds: kindNonFinite}
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

// AppendString appends s as a JSON string: the process protocol's own
// escaping (wire.AppendJSONString), so values and the envelope around them
// are written alike. Invalid UTF-8 becomes U+FFFD (Append refuses it
// instead; this is for text such as a method name that is only ever
// shown); U+2028 and U+2029 are escaped; <, > and & are left alone
// (nothing here is embedded in HTML).
func AppendString(b []byte, s string) []byte { return wire.AppendJSONString(b, s) }
