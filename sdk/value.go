package sdk

import (
	"fmt"
	"math"
	"strconv"
)

// The value model: the only Go types that cross a module boundary are
//
//	nil, bool, int64, float64, string, []byte, []any, map[string]any
//
// Integers stay integers on every transport. On the way out, Go's other
// integer types (int, int32, uint16, …) and float32 are accepted where the
// conversion is lossless and arrive on the other side as int64 and float64;
// anything else (structs, pointers, time.Time, uint64 above MaxInt64, typed
// slices and maps other than []byte) is an error, never a silent cast.

// MaxDepth is how deeply values may nest ([]any and map[string]any).
const MaxDepth = 64

// CheckValue reports whether v is made only of value-model types. The error
// names the offending path, e.g. `params.items[2]: time.Time is not in the
// value model`.
func CheckValue(v any) error {
	return checkValue(v, "value", 0)
}

// CheckParams is CheckValue for a params or result map, with paths that
// start at the map's keys.
func CheckParams(m map[string]any) error {
	if inModel(m, 0) {
		return nil // the usual case, without building a path per element
	}
	for k, v := range m {
		if err := checkValue(v, k, 1); err != nil {
			return err
		}
	}
	return nil
}

// inModel is checkValue without the error: it allocates nothing.
func inModel(v any, depth int) bool {
	if depth > MaxDepth {
		return false
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte,
		int, int8, int16, int32, uint8, uint16, uint32, float32:
		return true
	case uint:
		return uint64(x) <= math.MaxInt64
	case uint64:
		return x <= math.MaxInt64
	case []any:
		for _, e := range x {
			if !inModel(e, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		for _, e := range x {
			if !inModel(e, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func checkValue(v any, path string, depth int) error {
	if depth > MaxDepth {
		return Errorf(CodeBadParams, "%s: nested deeper than %d levels", path, MaxDepth)
	}
	switch x := v.(type) {
	case nil, bool, int64, float64, string, []byte,
		int, int8, int16, int32, uint8, uint16, uint32, float32:
		return nil
	case uint:
		if uint64(x) > math.MaxInt64 {
			return Errorf(CodeBadParams, "%s: %d does not fit in int64", path, x)
		}
	case uint64:
		if x > math.MaxInt64 {
			return Errorf(CodeBadParams, "%s: %d does not fit in int64", path, x)
		}
	case []any:
		for i, e := range x {
			if err := checkValue(e, path+"["+strconv.Itoa(i)+"]", depth+1); err != nil {
				return err
			}
		}
	case map[string]any:
		for k, e := range x {
			if err := checkValue(e, path+"."+k, depth+1); err != nil {
				return err
			}
		}
	default:
		return Errorf(CodeBadParams,
			"%s: %T is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)",
			path, v)
	}
	return nil
}

// Int returns params[key] as an int64. It accepts any integer in the value
// model and a float64 with an integral value; a missing key is an error.
func Int(params map[string]any, key string) (int64, error) {
	v, ok := params[key]
	if !ok {
		return 0, Errorf(CodeBadParams, "%q is required (an integer)", key)
	}
	switch x := v.(type) {
	case int64:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), nil
		}
		return 0, Errorf(CodeBadParams, "%q must be an integer, got %v", key, x)
	}
	return 0, Errorf(CodeBadParams, "%q must be an integer, got %s", key, TypeName(v))
}

// Float returns params[key] as a float64; integers are converted.
func Float(params map[string]any, key string) (float64, error) {
	v, ok := params[key]
	if !ok {
		return 0, Errorf(CodeBadParams, "%q is required (a number)", key)
	}
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case int:
		return float64(x), nil
	}
	return 0, Errorf(CodeBadParams, "%q must be a number, got %s", key, TypeName(v))
}

// String returns params[key] as a string; a missing key is an error.
func String(params map[string]any, key string) (string, error) {
	v, ok := params[key]
	if !ok {
		return "", Errorf(CodeBadParams, "%q is required (a string)", key)
	}
	s, ok := v.(string)
	if !ok {
		return "", Errorf(CodeBadParams, "%q must be a string, got %s", key, TypeName(v))
	}
	return s, nil
}

// TypeName names v's type in the words of the value model.
func TypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case int64, int, int8, int16, int32, uint, uint8, uint16, uint32, uint64:
		return "integer"
	case float64, float32:
		return "float"
	case string:
		return "string"
	case []byte:
		return "bytes"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}
