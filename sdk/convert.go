package sdk

import (
	"math"
	"reflect"
	"strconv"
	"time"
)

// TimeLayout is how ToValue writes a time.Time (in UTC): RFC 3339 with a
// fixed nine-digit fraction, so that text order is time order.
const TimeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// ToValue converts v, a common Go value, into the value model (see
// CheckValue), so that a dynamic method can return what it computed without
// converting it by hand:
//
//   - every integer type (int, int8 … int64, uint, uint8 … uint64, and named
//     types of them) becomes int64; an unsigned value above math.MaxInt64 is
//     an error, never a wrapped number;
//   - float32 and float64 become float64; bool, string and []byte stay;
//   - time.Duration becomes its int64 count of nanoseconds, as a typed
//     method's Duration field travels;
//   - time.Time becomes a string in RFC 3339, in UTC, with all nine digits
//     of nanoseconds ("2026-12-05T18:04:05.120000000Z", TimeLayout): the
//     same text on every transport whatever the host's time zone, in the
//     order of the instants when sorted as text (years 0 to 9999), read back
//     with time.Parse(time.RFC3339Nano, s);
//   - slices and arrays of any of these become []any (of bytes, []byte);
//     maps whose key is a string (or a named string type) become
//     map[string]any; a non-nil pointer or interface is followed, a nil one
//     becomes nil; nesting is converted all the way down, to MaxDepth levels.
//
// A value made only of the model's own types is returned as it is, without
// copying.
// Anything else (a struct, a channel, a map with integer keys) is a
// bad_params error naming its path and Go type as CheckValue does, e.g.
// `value.items[2]: struct {…} is not in the value model`.
func ToValue(v any) (any, error) {
	return toValue(v, "value", 0)
}

// ToParams is ToValue for a params or result map: v must be a map with
// string keys (map[string]int, map[string]any holding Go values, …), and
// paths in errors start at its keys, as CheckParams's do. A dynamic method
// can end with `return sdk.ToParams(map[string]any{"ids": ids, "at": t})`.
func ToParams(v any) (map[string]any, error) {
	if m, ok := v.(map[string]any); ok && ownTypes(m, 0) {
		return m, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		return nil, Errorf(CodeBadParams, "params: %T is not a map with string keys", v)
	}
	if rv.IsNil() {
		return map[string]any{}, nil
	}
	return mapToValue(rv, "", 1)
}

// toValue converts v; path names it in errors.
func toValue(v any, path string, depth int) (any, error) {
	if depth > MaxDepth {
		return nil, Errorf(CodeBadParams, "%s: nested deeper than %d levels", path, MaxDepth)
	}
	// The types the model has and the common ones, without reflection.
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte:
		return v, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Duration:
		return int64(x), nil
	case time.Time:
		return x.UTC().Format(TimeLayout), nil
	case []any:
		if ownTypes(x, depth) {
			return x, nil
		}
	case map[string]any:
		if ownTypes(x, depth) {
			return x, nil
		}
	}
	return reflectToValue(reflect.ValueOf(v), path, depth)
}

func reflectToValue(rv reflect.Value, path string, depth int) (any, error) {
	switch rv.Kind() {
	case reflect.Bool:
		return rv.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return nil, Errorf(CodeBadParams, "%s: %s %d does not fit in int64", path, rv.Type(), u)
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		return rv.Float(), nil
	case reflect.String:
		return rv.String(), nil
	case reflect.Slice:
		if rv.IsNil() {
			return nil, nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 { // []byte and named byte slices: bytes
			return rv.Bytes(), nil
		}
		return listToValue(rv, path, depth)
	case reflect.Array:
		if rv.Type().Elem().Kind() == reflect.Uint8 { // [32]byte, a sum: bytes too
			b := make([]byte, rv.Len())
			reflect.Copy(reflect.ValueOf(b), rv)
			return b, nil
		}
		return listToValue(rv, path, depth)
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			break
		}
		if rv.IsNil() {
			return nil, nil
		}
		return mapToValue(rv, path+".", depth+1)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return nil, nil
		}
		return toValue(rv.Elem().Interface(), path, depth+1)
	case reflect.Invalid:
		return nil, nil
	}
	return nil, Errorf(CodeBadParams,
		"%s: %s is not in the value model and sdk.ToValue does not convert it "+
			"(integers, floats, bool, string, []byte, time.Time, time.Duration, slices, and maps with string keys of these)",
		path, rv.Type())
}

func listToValue(rv reflect.Value, path string, depth int) (any, error) {
	out := make([]any, rv.Len())
	switch rv.Type().Elem().Kind() { // scalars: without boxing each element first
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		for i := range out {
			out[i] = rv.Index(i).Int()
		}
		return out, nil
	case reflect.Float32, reflect.Float64:
		for i := range out {
			out[i] = rv.Index(i).Float()
		}
		return out, nil
	case reflect.String:
		for i := range out {
			out[i] = rv.Index(i).String()
		}
		return out, nil
	}
	for i := range out {
		e, err := toValue(rv.Index(i).Interface(), path+"["+strconv.Itoa(i)+"]", depth+1)
		if err != nil {
			return nil, err
		}
		out[i] = e
	}
	return out, nil
}

// mapToValue converts a map with string keys; prefix is what its keys'
// paths start with ("" for a params map, "value." for a nested one).
func mapToValue(rv reflect.Value, prefix string, depth int) (map[string]any, error) {
	out := make(map[string]any, rv.Len())
	it := rv.MapRange()
	for it.Next() {
		k := it.Key().String()
		e, err := toValue(it.Value().Interface(), prefix+k, depth)
		if err != nil {
			return nil, err
		}
		out[k] = e
	}
	return out, nil
}

// ownTypes reports whether v is made only of the value model's own types
// (int64, not int): what ToValue returns unchanged. It allocates nothing.
func ownTypes(v any, depth int) bool {
	if depth > MaxDepth {
		return false
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte:
		return true
	case []any:
		for _, e := range x {
			if !ownTypes(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !ownTypes(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}
