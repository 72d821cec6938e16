// Package format is what the rules module answers: the result structs of its
// typed methods, and the conversion of whatever an expression returns into
// hotmod's value model.
package format

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"github.com/hotmod/hotmod/sdk"
)

// Result is what eval answers: the expression's value and its type in the
// value model's words (integer, float, string, bool, array, object, null).
type Result struct {
	Value any    `hotmod:"value,id=1"`
	Type  string `hotmod:"type,id=2"`
}

// NewResult makes eval's answer from a value already in the value model.
func NewResult(v any) Result {
	return Result{Value: v, Type: sdk.TypeName(v)}
}

// Check is what check answers. A rule that does not compile is an answer,
// not an error: OK is false and Error, Line and Column say what is wrong
// and where (both counted from 1).
type Check struct {
	OK     bool   `hotmod:"ok,id=1"`
	Output string `hotmod:"output,id=2"`
	Error  string `hotmod:"error,id=3"`
	Line   int64  `hotmod:"line,id=4"`
	Column int64  `hotmod:"column,id=5"`
}

// Matched is what match answers: the names of the rules that held, sorted,
// and how many rules were run.
func Matched(names []string, ran int) map[string]any {
	sort.Strings(names)
	list := make([]any, len(names))
	for i, n := range names {
		list[i] = n
	}
	return map[string]any{"matched": list, "ran": int64(ran)}
}

// Value converts what an expression returned into the value model: every
// integer type becomes int64, float32 float64, a time.Time its RFC 3339
// text, a time.Duration its Go text ("1h30m0s"), and slices and maps with
// string keys are converted element by element. Anything else (a struct, a
// function, a channel, an infinite or NaN float, which JSON cannot carry) is
// an error naming the path and the Go type.
func Value(v any) (any, error) {
	return value(reflect.ValueOf(v), "result", 0)
}

func value(v reflect.Value, path string, depth int) (any, error) {
	if depth > sdk.MaxDepth {
		return nil, fmt.Errorf("%s nests deeper than %d levels", path, sdk.MaxDepth)
	}
	if !v.IsValid() {
		return nil, nil
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.Format(time.RFC3339Nano), nil
	case time.Duration:
		return x.String(), nil
	case []byte:
		return x, nil
	}
	switch v.Kind() {
	case reflect.Bool:
		return v.Bool(), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if u := v.Uint(); u <= 1<<63-1 {
			return int64(u), nil
		}
		return nil, fmt.Errorf("%s is %d, beyond the largest integer the value model holds (int64)", path, v.Uint())
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("%s is %v, which JSON cannot carry (a division by zero?)", path, f)
		}
		return v.Float(), nil
	case reflect.String:
		return v.String(), nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return nil, nil
		}
		return value(v.Elem(), path, depth)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil, nil
		}
		out := make([]any, v.Len())
		for i := range out {
			e, err := value(v.Index(i), fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			out[i] = e
		}
		return out, nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("%s is a %s: maps in a result need string keys", path, v.Type())
		}
		if v.IsNil() {
			return nil, nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			k := it.Key().String()
			e, err := value(it.Value(), path+"."+k, depth+1)
			if err != nil {
				return nil, err
			}
			out[k] = e
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is a %s, which has no value-model form: return a number, string, bool, list or map", path, v.Type())
}
