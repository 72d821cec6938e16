package sdk

import (
	"context"
	"fmt"
	"reflect"
	"unsafe"
)

// MethodDef is a typed method, made by Func and added with Module.Method.
// A mistake in its types or tags is kept in it and reported by the
// module's Validate.
type MethodDef struct {
	name           string
	opts           []MethodOption
	err            error
	params, result *Schema
	handler        Handler
	raw            rawHandler
	into           rawIntoHandler
}

// rawHandler is a typed method's CBOR entry point: params in, result out,
// both CBOR, with no maps in between.
type rawHandler func(ctx context.Context, params []byte) ([]byte, error)

// Func declares a typed method: f takes its params as an In struct and
// returns its result as an Out struct. The method's params and result
// schemas, which go into the manifest, are derived from the structs' field
// types and hotmod tags; so are the plans that decode params into In and
// encode Out, built once here with reflect. Calls then reach fields through
// offsets: no reflect for scalars, strings, []byte, nested structs, and
// slices and maps of common element types (bool, int, int64, float64,
// string, any); reflect only allocates what a pointer field points to and
// the arrays of other slices, and builds maps of other value types.
//
//	type QuoteIn struct {
//		SKU    string `hotmod:"sku,id=1,required"`
//		Qty    int64  `hotmod:"qty,id=2,required"`
//		Coupon string `hotmod:"coupon,id=3,default=NONE,alias=code|voucher"`
//	}
//	var Module = sdk.New("pricing", "1.1.0").Method(sdk.Func("quote", quote))
//	func quote(ctx context.Context, in QuoteIn) (QuoteOut, error) { … }
//
// # Tags
//
// Every exported field of In and Out, and of the structs inside them, has a
// hotmod tag; unexported fields are left alone. The grammar:
//
//	tag     = "-" | name { "," option }
//	name    = ( letter | "_" ) { letter | digit | "_" | "-" }
//	option  = "id=" integer              stable id, 1 to 2147483647, unique in the struct (mandatory)
//	        | "required"                 params must carry the field (not null)
//	        | "default=" value           what an absent optional field is
//	        | "alias=" name { "|" name } other accepted names, e.g. old ones
//
// "-" leaves the field out. A value is written as the field's type reads it:
// true or false, a base-10 integer within the field's range, a finite float,
// or a string, bare (up to the next comma) or as a double-quoted Go string
// literal (`default="a, b"`). Spaces around options are ignored. The id is
// what identifies a field across versions: a rename keeps it (see the
// contract rules in the host's internal/contract). Mistakes are errors at
// Validate, each naming the struct field: a missing or unparseable tag, a
// missing, repeated or out-of-range id, a name or alias used twice in one
// struct, an unknown option, a default that does not parse as the field's
// type, a default on a required field or on a non-scalar field, required on
// a pointer, an unsupported field type, a struct type that refers to itself.
//
// # Types
//
// bool; int, int8…int64 and uint, uint8…uint64 (schema types int8…uint64:
// integers carry their range); float32, float64; string; []byte (bytes);
// slices of supported types (array); map[string]T (map); structs (object);
// pointers to structs (an optional, nullable object: nil when absent or
// null); and any, which holds any value-model value as it comes.
//
// # Decoding params
//
//   - A field is looked up by its name, then by its aliases in the order the
//     schema lists them (sorted); the first one present wins.
//   - A field that is absent or null gets its default, or its zero value. A
//     required field that is absent or null is a bad_params error naming it:
//     `"qty" is required (an integer)`.
//   - Keys that name no field are ignored, so older modules accept params
//     from newer callers.
//   - A value of the wrong type is a bad_params error naming the field's
//     path: `"qty": want integer, got string`, `"items[2].qty": …`.
//   - Conversions are lossless only: an integer field takes any integer,
//     and a float whose value is an integer (3.0, not 3.5), if it fits the
//     field's range (`300 does not fit in uint8`); a float field takes any
//     float, and an integer that a float64 represents exactly (so 2^53+1 is
//     refused). The one rounding is float32's own: a float32 field takes the
//     nearest float32 to the value, and a finite value beyond its range is
//     an error. Nothing else converts: no strings to numbers, no numbers to
//     bools, no strings to bytes.
//   - Null inside an array or a map is an error, except where the element
//     is a pointer or any.
//   - A decoded slice may take at most MaxSliceBytes.
//   - On the native transport, []byte values and map[string]any fields are
//     handed over as the caller passed them, not copied, as a dynamic
//     method gets its params map.
//
// # Encoding results
//
// Every field is written under its wire name, a nil pointer field is left
// out, nil slices and maps are written empty, integers become int64 (a
// uint64 above MaxInt64 is an error) and floats float64.
//
// # Transports
//
// The native transport calls the method with a params map (Module.Invoke);
// the byte transports call Module.InvokeCBOR, which decodes CBOR straight
// into In and encodes Out straight to CBOR by the same plans, with the same
// rules and the same errors. For structs without map or any fields, the
// plan is also compiled into a one-pass decoder (keys found through a hash
// table of their encoded bytes, fields seen kept in a bit mask) that handles
// params of the usual shape and leaves anything else, errors included, to
// the general decoder; a wasm guest encodes results into one buffer reused
// across calls, so a typed call there allocates only what its params hold.
func Func[In, Out any](name string, f func(ctx context.Context, in In) (Out, error), opts ...MethodOption) MethodDef {
	d := MethodDef{name: name, opts: opts}
	inC, err := planFor(reflect.TypeFor[In]())
	if err != nil {
		d.err = fmt.Errorf("params: %w", err)
		return d
	}
	outC, err := planFor(reflect.TypeFor[Out]())
	if err != nil {
		d.err = fmt.Errorf("result: %w", err)
		return d
	}
	if f == nil {
		d.err = fmt.Errorf("the function is nil")
		return d
	}
	d.params, d.result = inC.schema, outC.schema
	d.handler = func(ctx context.Context, params map[string]any) (map[string]any, error) {
		var in In
		if err := inC.decodeMap(unsafe.Pointer(&in), params); err != nil {
			return nil, err
		}
		out, err := f(ctx, in)
		if err != nil {
			return nil, err
		}
		res, err := outC.encodeMap(unsafe.Pointer(&out))
		if err != nil {
			return nil, resultError(name, err)
		}
		return res, nil
	}
	d.raw = rawFunc(name, inC, outC, f)
	d.into = rawIntoFunc(name, inC, outC, f)
	return d
}

// resultError is what the caller gets when a method's result cannot be
// encoded: the module broke its own contract.
func resultError(method string, err error) error {
	return Errorf(CodeModule, "method %s returned a result that cannot cross the boundary: %s", method, AsError(err).Message)
}

// Encode returns v, a struct with hotmod tags (or a pointer to one), as a
// params map: what a host passes to Invoke to call a typed method. It is the
// plan Func uses for results, so Encode(out) is what the method returns.
func Encode[T any](v T) (map[string]any, error) {
	t := reflect.TypeFor[T]()
	p := unsafe.Pointer(&v)
	if t.Kind() == reflect.Pointer {
		t, p = t.Elem(), *(*unsafe.Pointer)(p)
		if p == nil {
			return nil, Errorf(CodeBadParams, "sdk.Encode: nil %s", reflect.TypeFor[T]())
		}
	}
	c, err := planFor(t)
	if err != nil {
		return nil, Errorf(CodeBadParams, "sdk.Encode: %v", err)
	}
	return c.encodeMap(p)
}

// Decode returns m decoded into a T, a struct with hotmod tags, by the rules
// typed methods decode their params with (see Func): what a host uses to
// read a typed method's result. Errors are bad_params and name the field.
func Decode[T any](m map[string]any) (T, error) {
	var v T
	c, err := planFor(reflect.TypeFor[T]())
	if err != nil {
		return v, Errorf(CodeBadParams, "sdk.Decode: %v", err)
	}
	err = c.decodeMap(unsafe.Pointer(&v), m)
	return v, err
}

// SchemaOf returns the schema derived from T, a struct with hotmod tags, or
// the problems with its tags.
func SchemaOf[T any]() (*Schema, error) {
	c, err := planFor(reflect.TypeFor[T]())
	if err != nil {
		return nil, Errorf(CodeBadParams, "sdk.SchemaOf: %v", err)
	}
	return c.schema.Clone(), nil
}
