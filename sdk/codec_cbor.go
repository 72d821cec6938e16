package sdk

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// The CBOR path: the same plans, the same rules and the same errors as the
// map path (codec_map.go), reading and writing CBOR directly, without maps.

// rawFunc returns a typed method's CBOR entry point.
func rawFunc[In, Out any](name string, inC, outC *codec, f func(context.Context, In) (Out, error)) rawHandler {
	into := rawIntoFunc(name, inC, outC, f)
	return func(ctx context.Context, params []byte) ([]byte, error) {
		return into(ctx, params, make([]byte, 0, 128))
	}
}

// rawIntoHandler is rawHandler that appends the result to dst: a caller
// that is done with the previous result before the next call (the wasm
// guest) passes the same buffer every time, and a call allocates nothing
// but what the method's params hold.
type rawIntoHandler func(ctx context.Context, params, dst []byte) ([]byte, error)

func rawIntoFunc[In, Out any](name string, inC, outC *codec, f func(context.Context, In) (Out, error)) rawIntoHandler {
	return func(ctx context.Context, params, dst []byte) ([]byte, error) {
		var in In
		if err := inC.decodeCBOR(unsafe.Pointer(&in), params); err != nil {
			return nil, err
		}
		out, err := f(ctx, in)
		if err != nil {
			return nil, err
		}
		b, err := outC.encodeCBOR(dst, unsafe.Pointer(&out))
		if err != nil {
			return nil, resultError(name, err)
		}
		return b, nil
	}
}

// EncodeCBOR returns v, a struct with hotmod tags (or a pointer to one), as
// CBOR params: Encode for the byte transports.
func EncodeCBOR[T any](v T) ([]byte, error) {
	t := reflect.TypeFor[T]()
	p := unsafe.Pointer(&v)
	if t.Kind() == reflect.Pointer {
		t, p = t.Elem(), *(*unsafe.Pointer)(p)
		if p == nil {
			return nil, Errorf(CodeBadParams, "sdk.EncodeCBOR: nil %s", reflect.TypeFor[T]())
		}
	}
	c, err := planFor(t)
	if err != nil {
		return nil, Errorf(CodeBadParams, "sdk.EncodeCBOR: %v", err)
	}
	return c.encodeCBOR(nil, p)
}

// DecodeCBOR decodes a CBOR map into a T, a struct with hotmod tags, by the
// rules of Decode, without building maps: Decode for the byte transports.
// Empty data is an empty map.
func DecodeCBOR[T any](data []byte) (T, error) {
	var v T
	c, err := planFor(reflect.TypeFor[T]())
	if err != nil {
		return v, Errorf(CodeBadParams, "sdk.DecodeCBOR: %v", err)
	}
	err = c.decodeCBOR(unsafe.Pointer(&v), data)
	return v, err
}

// decodeCBOR fills the zero struct at p from a CBOR map; empty data is an
// empty map.
func (c *codec) decodeCBOR(p unsafe.Pointer, data []byte) error {
	if c.decodeFast(p, data) {
		return nil
	}
	c.zero(p) // the fast path may have filled part of it
	return c.decodeCBORGeneral(p, data)
}

// decodeCBORGeneral is decodeCBOR without the fast path.
func (c *codec) decodeCBORGeneral(p unsafe.Pointer, data []byte) error {
	if len(data) == 0 {
		return c.decodeMap(p, nil)
	}
	d := decoders.Get().(*cbor.Decoder)
	d.Reset(data)
	defer func() {
		d.Reset(nil) // do not keep the params alive
		decoders.Put(d)
	}()
	k, err := d.Peek()
	if err != nil {
		return Errorf(CodeBadParams, "params are %s", cborProblem(err))
	}
	if k != cbor.KindMap {
		return Errorf(CodeBadParams, "params must be a CBOR map, not %s", kindWord(k))
	}
	if fe := c.structFromCBOR(p, d); fe != nil {
		if fe.path == "" { // the map itself is malformed
			return Errorf(CodeBadParams, "params are %s", fe.msg)
		}
		return fe.toError()
	}
	if !d.Done() {
		return Errorf(CodeBadParams, "params are not valid CBOR: %d bytes after the map at byte %d", len(data)-d.Offset(), d.Offset())
	}
	return nil
}

// decoders saves the allocation of a Decoder per call.
var decoders = sync.Pool{New: func() any { return cbor.NewDecoder(nil, cbor.DefaultLimits) }}

// kindWord names a CBOR kind as TypeName names a value-model type.
func kindWord(k cbor.Kind) string {
	switch k {
	case cbor.KindNull:
		return "null"
	case cbor.KindBool:
		return "bool"
	case cbor.KindInt:
		return "integer"
	case cbor.KindFloat:
		return "float"
	case cbor.KindString:
		return "string"
	case cbor.KindBytes:
		return "bytes"
	case cbor.KindArray:
		return "array"
	case cbor.KindMap:
		return "object"
	}
	return "invalid"
}

// malformed is a decoder error: the input is not CBOR of the value model.
func malformed(err error) *fieldError {
	return &fieldError{msg: cborProblem(err)}
}

// cborProblem words a decoder error: "not valid CBOR at byte 17: …".
func cborProblem(err error) string {
	var de *cbor.DecodeError
	if errors.As(err, &de) {
		return "not valid CBOR at byte " + strconv.Itoa(de.Offset) + ": " + de.Msg
	}
	return "not valid CBOR: " + err.Error()
}

// unseen is the rank of a field no key has set yet.
const unseen = 0xff

// structFromCBOR fills the zero struct at p from the map that comes next,
// by the rules of structFromMap: the wire name beats the aliases, which beat
// each other in order; null is absent; unknown keys are skipped; a key twice
// is an error, as cbor.UnmarshalMap makes it for the map path.
func (c *codec) structFromCBOR(p unsafe.Pointer, d *cbor.Decoder) *fieldError {
	n, err := d.ReadMapHeader()
	if err != nil {
		return malformed(err)
	}
	var buf [16]uint8
	ranks := buf[:0]
	if len(c.fields) <= len(buf) {
		ranks = buf[:len(c.fields)]
	} else {
		ranks = make([]uint8, len(c.fields))
	}
	for i := range ranks {
		ranks[i] = unseen
	}
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		key, err := d.ReadStringBytes()
		if err != nil {
			return malformed(err)
		}
		r, known := c.lookup(key)
		if !known {
			if err := d.Skip(); err != nil {
				return malformed(err)
			}
			continue
		}
		k, err := d.Peek()
		if err != nil {
			return malformed(err)
		}
		if k == cbor.KindNull {
			if err := d.ReadNull(); err != nil {
				return malformed(err)
			}
			continue
		}
		f := &c.fields[r.field]
		switch have := ranks[r.field]; {
		case r.rank == have:
			return &fieldError{path: r.name, msg: "the key is given twice"}
		case r.rank > have: // a name that ranks higher already set it
			if err := d.Skip(); err != nil {
				return malformed(err)
			}
			continue
		case have != unseen: // an alias set it; the better name starts over
			f.c.zero(unsafe.Add(p, f.offset))
		}
		if fe := f.c.fromCBOR(unsafe.Add(p, f.offset), d); fe != nil {
			return fe.at(f.name)
		}
		ranks[r.field] = r.rank
	}
	if fe := readBreak(d, n); fe != nil {
		return fe
	}
	for i, r := range ranks {
		if r != unseen {
			continue
		}
		f := &c.fields[i]
		if f.required {
			return &fieldError{path: f.name, required: true, msg: f.c.wantArticle()}
		}
		if f.def != nil {
			f.c.fromValue(unsafe.Add(p, f.offset), f.def)
		}
	}
	return nil
}

// zero sets the value at p back to its zero value with typed stores (so
// that the garbage collector sees every pointer cleared).
func (c *codec) zero(p unsafe.Pointer) {
	switch c.kind {
	case cBool:
		*(*bool)(p) = false
	case cInt, cUint:
		storeInt(p, c.size, 0)
	case cFloat32:
		*(*float32)(p) = 0
	case cFloat64:
		*(*float64)(p) = 0
	case cString:
		*(*string)(p) = ""
	case cBytes, cSlice:
		*(*sliceHeader)(p) = sliceHeader{}
	case cMap, cPtr:
		*(*unsafe.Pointer)(p) = nil
	case cAny:
		*(*any)(p) = nil
	case cStruct:
		for i := range c.fields {
			c.fields[i].c.zero(unsafe.Add(p, c.fields[i].offset))
		}
	}
}

// fromCBOR reads the next item into the zero value at p.
func (c *codec) fromCBOR(p unsafe.Pointer, d *cbor.Decoder) *fieldError {
	k, err := d.Peek()
	if err != nil {
		return malformed(err)
	}
	switch c.kind {
	case cBool:
		if k != cbor.KindBool {
			return mismatch(c, kindWord(k))
		}
		b, err := d.ReadBool()
		if err != nil {
			return malformed(err)
		}
		*(*bool)(p) = b
	case cInt, cUint:
		var i int64
		var fe *fieldError
		switch k {
		case cbor.KindInt:
			if i, err = d.ReadInt(); err != nil {
				return tooBig(err)
			}
			i, fe = c.checkRange(i)
		case cbor.KindFloat:
			f, err := d.ReadFloat()
			if err != nil {
				return malformed(err)
			}
			i, fe = c.intFromFloat(f)
		default:
			return mismatch(c, kindWord(k))
		}
		if fe != nil {
			return fe
		}
		storeInt(p, c.size, i)
	case cFloat32, cFloat64:
		var f float64
		var fe *fieldError
		switch k {
		case cbor.KindFloat:
			if f, err = d.ReadFloat(); err != nil {
				return malformed(err)
			}
			f, fe = c.checkFloat32(f)
		case cbor.KindInt:
			i, err := d.ReadInt()
			if err != nil {
				return tooBig(err)
			}
			f, fe = c.floatFromInt(i)
		default:
			return mismatch(c, kindWord(k))
		}
		if fe != nil {
			return fe
		}
		if c.kind == cFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
	case cString:
		if k != cbor.KindString {
			return mismatch(c, kindWord(k))
		}
		s, err := d.ReadString()
		if err != nil {
			return malformed(err)
		}
		*(*string)(p) = s
	case cBytes:
		if k != cbor.KindBytes {
			return mismatch(c, kindWord(k))
		}
		b, err := d.ReadBytes()
		if err != nil {
			return malformed(err)
		}
		*(*[]byte)(p) = b
	case cSlice:
		if k != cbor.KindArray {
			return mismatch(c, kindWord(k))
		}
		return c.sliceFromCBOR(p, d)
	case cMap:
		if k != cbor.KindMap {
			return mismatch(c, kindWord(k))
		}
		return c.mapFromCBOR(p, d)
	case cStruct:
		if k != cbor.KindMap {
			return mismatch(c, kindWord(k))
		}
		return c.structFromCBOR(p, d)
	case cPtr:
		if k == cbor.KindNull {
			if err := d.ReadNull(); err != nil {
				return malformed(err)
			}
			return nil
		}
		if k != cbor.KindMap {
			return mismatch(c, kindWord(k))
		}
		np := reflect.New(c.elem.rtype).UnsafePointer()
		if fe := c.elem.structFromCBOR(np, d); fe != nil {
			return fe
		}
		*(*unsafe.Pointer)(p) = np
	case cAny:
		v, err := d.ReadValue()
		if err != nil {
			return malformed(err)
		}
		*(*any)(p) = v
	}
	return nil
}

// tooBig is ReadInt's error for an integer outside int64, in the words of
// the map path.
func tooBig(err error) *fieldError {
	var de *cbor.DecodeError
	if errors.As(err, &de) {
		return &fieldError{msg: de.Msg}
	}
	return malformed(err)
}

func (c *codec) sliceFromCBOR(p unsafe.Pointer, d *cbor.Decoder) *fieldError {
	n, err := d.ReadArrayHeader()
	if err != nil {
		return malformed(err)
	}
	if n >= 0 {
		if fe := c.checkSliceSize(n); fe != nil {
			return fe
		}
		data := c.makeSlice(n)
		for i := 0; i < n; i++ {
			if fe := c.elem.fromCBOR(unsafe.Add(data, uintptr(i)*c.elem.size), d); fe != nil {
				return fe.at(index(i))
			}
		}
		*(*sliceHeader)(p) = sliceHeader{data, n, n}
		return nil
	}
	// An indefinite-length array (written by some other languages'
	// streaming encoders): grown with reflect, which copies typed memory
	// correctly.
	s := reflect.New(c.rtype).Elem()
	s.Set(reflect.MakeSlice(c.rtype, 0, 4))
	for i := 0; !d.AtBreak(); i++ {
		if fe := c.checkSliceSize(i + 1); fe != nil {
			return fe
		}
		if s.Len() == s.Cap() {
			s.Grow(1)
		}
		s.SetLen(i + 1)
		if fe := c.elem.fromCBOR(unsafe.Add(s.UnsafePointer(), uintptr(i)*c.elem.size), d); fe != nil {
			return fe.at(index(i))
		}
	}
	if err := d.ReadBreak(); err != nil {
		return malformed(err)
	}
	*(*sliceHeader)(p) = sliceHeader{s.UnsafePointer(), s.Len(), s.Cap()}
	return nil
}

func (c *codec) mapFromCBOR(p unsafe.Pointer, d *cbor.Decoder) *fieldError {
	n, err := d.ReadMapHeader()
	if err != nil {
		return malformed(err)
	}
	switch c.mapRep {
	case mapAny:
		return mapFromCBOROf[any](c, p, d, n)
	case mapString:
		return mapFromCBOROf[string](c, p, d, n)
	case mapInt64:
		return mapFromCBOROf[int64](c, p, d, n)
	case mapInt:
		return mapFromCBOROf[int](c, p, d, n)
	case mapFloat64:
		return mapFromCBOROf[float64](c, p, d, n)
	case mapBool:
		return mapFromCBOROf[bool](c, p, d, n)
	}
	m := reflect.MakeMapWithSize(c.rtype, max(n, 0))
	storeMap(p, m)
	kt := c.rtype.Key()
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		k, err := d.ReadString()
		if err != nil {
			return malformed(err)
		}
		key := reflect.ValueOf(k).Convert(kt)
		if m.MapIndex(key).IsValid() {
			return &fieldError{path: k, msg: "the key is given twice"}
		}
		x := reflect.New(c.elem.rtype)
		if fe := c.elem.fromCBOR(x.UnsafePointer(), d); fe != nil {
			return fe.at(k)
		}
		m.SetMapIndex(key, x.Elem())
	}
	return readBreak(d, n)
}

// mapFromCBOROf reads a map of n entries (-1: indefinite) into a new
// map[string]V at p with typed code.
func mapFromCBOROf[V any](c *codec, p unsafe.Pointer, d *cbor.Decoder, n int) *fieldError {
	m := make(map[string]V, max(n, 0))
	*(*map[string]V)(p) = m
	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
		k, err := d.ReadString()
		if err != nil {
			return malformed(err)
		}
		if _, dup := m[k]; dup {
			return &fieldError{path: k, msg: "the key is given twice"}
		}
		var x V
		if fe := c.elem.fromCBOR(unsafe.Pointer(&x), d); fe != nil {
			return fe.at(k)
		}
		m[k] = x
	}
	return readBreak(d, n)
}

// readBreak ends an indefinite-length (n < 0) array or map.
func readBreak(d *cbor.Decoder, n int) *fieldError {
	if n < 0 {
		if err := d.ReadBreak(); err != nil {
			return malformed(err)
		}
	}
	return nil
}

// encodeCBOR appends the struct at p to b as a CBOR map.
func (c *codec) encodeCBOR(b []byte, p unsafe.Pointer) ([]byte, error) {
	b, fe := c.appendStruct(b, p)
	if fe != nil {
		return nil, fe.toError()
	}
	return b, nil
}

func (c *codec) appendStruct(b []byte, p unsafe.Pointer) ([]byte, *fieldError) {
	n := len(c.fields)
	if c.hasPtr {
		for i := range c.fields {
			f := &c.fields[i]
			if f.c.kind == cPtr && *(*unsafe.Pointer)(unsafe.Add(p, f.offset)) == nil {
				n--
			}
		}
	}
	if n < 24 {
		b = append(b, 0xa0|byte(n))
	} else {
		b = cbor.AppendMapHeader(b, n)
	}
	for i := range c.fields {
		f := &c.fields[i]
		fp := unsafe.Add(p, f.offset)
		if f.c.kind == cPtr && *(*unsafe.Pointer)(fp) == nil {
			continue
		}
		b = append(b, f.key.enc...)
		var fe *fieldError
		switch f.c.kind { // the commonest kinds without a call to appendValue
		case cInt:
			b = cbor.AppendInt(b, loadInt(fp, f.c.size))
		case cBool:
			b = cbor.AppendBool(b, *(*bool)(fp))
		case cFloat64:
			b = cbor.AppendFloat(b, *(*float64)(fp))
		default:
			b, fe = f.c.appendValue(b, fp)
		}
		if fe != nil {
			return nil, fe.at(f.name)
		}
	}
	return b, nil
}

// appendValue appends the value at p, as toValue would return it.
func (c *codec) appendValue(b []byte, p unsafe.Pointer) ([]byte, *fieldError) {
	switch c.kind {
	case cBool:
		return cbor.AppendBool(b, *(*bool)(p)), nil
	case cInt:
		return cbor.AppendInt(b, loadInt(p, c.size)), nil
	case cUint:
		u := loadUint(p, c.size)
		if u > math.MaxInt64 {
			return nil, &fieldError{msg: strconv.FormatUint(u, 10) + " does not fit in the value model's int64"}
		}
		return cbor.AppendInt(b, int64(u)), nil
	case cFloat32:
		return cbor.AppendFloat(b, float64(*(*float32)(p))), nil
	case cFloat64:
		return cbor.AppendFloat(b, *(*float64)(p)), nil
	case cString:
		return appendText(b, *(*string)(p))
	case cBytes:
		return cbor.AppendBytes(b, *(*[]byte)(p)), nil
	case cSlice:
		h := (*sliceHeader)(p)
		b = cbor.AppendArrayHeader(b, h.len)
		for i := 0; i < h.len; i++ {
			var fe *fieldError
			if b, fe = c.elem.appendValue(b, unsafe.Add(h.data, uintptr(i)*c.elem.size)); fe != nil {
				return nil, fe.at(index(i))
			}
		}
		return b, nil
	case cMap:
		return c.appendMap(b, p)
	case cStruct:
		return c.appendStruct(b, p)
	case cPtr:
		sp := *(*unsafe.Pointer)(p)
		if sp == nil {
			return cbor.AppendNull(b), nil
		}
		return c.elem.appendStruct(b, sp)
	case cAny:
		return appendAny(b, *(*any)(p))
	}
	return b, nil
}

func appendText(b []byte, s string) ([]byte, *fieldError) {
	if !utf8.ValidString(s) {
		return nil, &fieldError{msg: "the string is not valid UTF-8"}
	}
	return cbor.AppendString(b, s), nil
}

func appendAny(b []byte, v any) ([]byte, *fieldError) {
	out, err := cbor.Append(b, v)
	if err != nil {
		var ee *cbor.EncodeError
		if errors.As(err, &ee) {
			return nil, &fieldError{msg: ee.Path + ": " + ee.Msg}
		}
		return nil, &fieldError{msg: err.Error()}
	}
	return out, nil
}

func (c *codec) appendMap(b []byte, p unsafe.Pointer) ([]byte, *fieldError) {
	switch c.mapRep {
	case mapAny:
		return appendMapOf[any](c, b, p)
	case mapString:
		return appendMapOf[string](c, b, p)
	case mapInt64:
		return appendMapOf[int64](c, b, p)
	case mapInt:
		return appendMapOf[int](c, b, p)
	case mapFloat64:
		return appendMapOf[float64](c, b, p)
	case mapBool:
		return appendMapOf[bool](c, b, p)
	}
	// Other value types: the map through reflect, each value by its plan.
	mv := loadMap(c.rtype, p)
	b = cbor.AppendMapHeader(b, mv.Len())
	x := reflect.New(c.elem.rtype)
	it := mv.MapRange()
	var fe *fieldError
	for it.Next() {
		k := it.Key().String()
		if b, fe = appendText(b, k); fe != nil {
			return nil, fe.at(k)
		}
		x.Elem().Set(it.Value())
		if b, fe = c.elem.appendValue(b, x.UnsafePointer()); fe != nil {
			return nil, fe.at(k)
		}
	}
	return b, nil
}

func appendMapOf[V any](c *codec, b []byte, p unsafe.Pointer) ([]byte, *fieldError) {
	m := *(*map[string]V)(p)
	b = cbor.AppendMapHeader(b, len(m))
	var fe *fieldError
	for k, v := range m {
		if b, fe = appendText(b, k); fe == nil {
			b, fe = c.elem.appendValue(b, unsafe.Pointer(&v))
		}
		if fe != nil {
			return nil, fe.at(k)
		}
	}
	return b, nil
}
