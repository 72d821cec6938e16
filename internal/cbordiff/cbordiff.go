// Package cbordiff holds hotmod's CBOR codec (sdk/cbor) against an
// independent implementation, github.com/fxamacker/cbor/v2, configured as
// strictly as it goes for the value model. Its tests are differential: what
// sdk/cbor accepts, fxamacker must decode to the same value, and what either
// encodes from a value-model value, the other must decode to that value. Its
// benchmarks compare the two, and encoding/json, on value-model maps.
//
// The package exists for its tests; nothing imports it, and the dependency
// on fxamacker/cbor stays out of the sdk module.
package cbordiff

import (
	"bytes"
	"fmt"
	"math"
	"math/big"
	"reflect"

	fx "github.com/fxamacker/cbor/v2"
)

// DecMode decodes the way the value model wants:
//   - integers as int64, failing outside int64 (IntDecConvertSignedOrFail)
//     instead of fxamacker's default of uint64 for major type 0;
//   - maps as map[string]any (instead of map[any]any), so non-text keys fail;
//   - duplicate map keys and invalid UTF-8 fail;
//   - indefinite lengths are allowed, as sdk/cbor allows them;
//   - tags are allowed, so that the self-describe tag 55799 (which fxamacker
//     skips, as sdk/cbor does) decodes; other tags then decode to cbor.Tag,
//     time.Time or big.Int, which Normalize refuses;
//   - nesting, array and map sizes are allowed up to at least sdk/cbor's
//     DefaultLimits, so that the limits never explain a disagreement.
var DecMode = mustDecMode(fx.DecOptions{
	DupMapKey:        fx.DupMapKeyEnforcedAPF,
	IndefLength:      fx.IndefLengthAllowed,
	TagsMd:           fx.TagsAllowed,
	IntDec:           fx.IntDecConvertSignedOrFail,
	DefaultMapType:   reflect.TypeOf(map[string]any(nil)),
	UTF8:             fx.UTF8RejectInvalid,
	MaxNestedLevels:  65535,
	MaxArrayElements: 1 << 20,
	MaxMapPairs:      1 << 20,
})

// DetEncMode is fxamacker's RFC 8949 §4.2.1 core deterministic encoding
// (sorted keys, shortest floats, NaN as f97e00), with nil slices and maps
// encoded as empty ones, as sdk/cbor does. sdk/cbor's MarshalDeterministic
// must produce the very same bytes.
var DetEncMode = mustEncMode(func() fx.EncOptions {
	o := fx.CoreDetEncOptions()
	o.NilContainers = fx.NilContainerAsEmpty
	return o
}())

// EncMode is fxamacker's default encoding (unsorted keys, float64 always
// written as a double), the configuration a program in the wild is most
// likely to send.
var EncMode = mustEncMode(fx.EncOptions{})

func mustDecMode(o fx.DecOptions) fx.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustEncMode(o fx.EncOptions) fx.EncMode {
	m, err := o.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

// Decode decodes data with DecMode and normalizes the result.
func Decode(data []byte) (any, error) {
	var v any
	if err := DecMode.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return Normalize(v)
}

// Normalize checks that a value fxamacker decoded is in the value model and
// returns it in the value model's types. With DecMode there is nothing to
// convert; this is where the documented differences surface as errors:
// simple values other than false, true, null and undefined (cbor.SimpleValue),
// tags other than 55799 (cbor.Tag, time.Time, big.Int), which sdk/cbor
// refuses. A uint64 (fxamacker's default for major type 0, had DecMode not
// asked for int64) is converted when it fits in int64.
func Normalize(v any) (any, error) {
	switch x := v.(type) {
	case nil, bool, int64, float64, string:
		return v, nil
	case uint64:
		if x > math.MaxInt64 {
			return nil, fmt.Errorf("integer %d does not fit in int64", x)
		}
		return int64(x), nil
	case []byte:
		return x, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := Normalize(e)
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case fx.SimpleValue:
		return nil, fmt.Errorf("simple value %d is not in the value model", x)
	case fx.Tag:
		return nil, fmt.Errorf("tag %d is not in the value model", x.Number)
	case big.Int, *big.Int:
		return nil, fmt.Errorf("bignum %v is not in the value model", x)
	}
	return nil, fmt.Errorf("%T is not in the value model", v)
}

// Equal compares value-model values exactly: floats by their bits, except
// that any NaN equals any NaN (neither codec keeps NaN payloads); nil and
// empty byte strings, arrays and maps are alike.
func Equal(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, int64, string:
		return a == b
	case float64:
		y, ok := b.(float64)
		if !ok {
			return false
		}
		if x != x || y != y {
			return x != x && y != y
		}
		return math.Float64bits(x) == math.Float64bits(y)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !Equal(v, w) {
				return false
			}
		}
		return true
	}
	return false
}
