package sdk

import (
	"math"
	"reflect"
	"strconv"
	"unsafe"
)

// fieldError is a decoding failure at a path inside the params, e.g.
// items[2].qty. Paths are built on the way out, so only failures pay for them.
type fieldError struct {
	path     string
	required bool   // the field is missing
	msg      string // what is wrong, e.g. "want integer, got string"
}

func (e *fieldError) Error() string { return e.toError().Error() }

// at prefixes the path with a field name or, when seg starts with '[', an
// index.
func (e *fieldError) at(seg string) *fieldError {
	switch {
	case e.path == "":
		e.path = seg
	case e.path[0] == '[':
		e.path = seg + e.path
	default:
		e.path = seg + "." + e.path
	}
	return e
}

func (e *fieldError) toError() *Error {
	if e.required {
		return Errorf(CodeBadParams, "%q is required (%s)", e.path, e.msg)
	}
	if e.path == "" {
		return Errorf(CodeBadParams, "%s", e.msg)
	}
	return Errorf(CodeBadParams, "%q: %s", e.path, e.msg)
}

func mismatch(c *codec, got string) *fieldError {
	return &fieldError{msg: "want " + c.want() + ", got " + got}
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// decodeMap fills the zero struct at p from params.
func (c *codec) decodeMap(p unsafe.Pointer, params map[string]any) error {
	if fe := c.structFromMap(p, params); fe != nil {
		return fe.toError()
	}
	return nil
}

// structFromMap fills the zero struct at p. For each field: its wire name,
// then its aliases; a null counts as absent; absent is the default, or an
// error when required. Keys that name no field are ignored.
func (c *codec) structFromMap(p unsafe.Pointer, m map[string]any) *fieldError {
	for i := range c.fields {
		f := &c.fields[i]
		v, found := m[f.name]
		if v == nil {
			found = false
			for _, a := range f.aliases {
				if v = m[a]; v != nil {
					found = true
					break
				}
			}
		}
		fp := unsafe.Add(p, f.offset)
		if !found {
			if f.required {
				return &fieldError{path: f.name, required: true, msg: f.c.wantArticle()}
			}
			if f.def != nil {
				f.c.fromValue(fp, f.def) // checked at registration: cannot fail
			}
			continue
		}
		if fe := f.c.fromValue(fp, v); fe != nil {
			return fe.at(f.name)
		}
	}
	return nil
}

// fromValue stores the value-model value v at p, which holds a zero value.
func (c *codec) fromValue(p unsafe.Pointer, v any) *fieldError {
	switch c.kind {
	case cBool:
		b, ok := v.(bool)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		*(*bool)(p) = b
	case cInt, cUint:
		i, fe := c.intFromValue(v)
		if fe != nil {
			return fe
		}
		storeInt(p, c.size, i)
	case cFloat32, cFloat64:
		f, fe := c.floatFromValue(v)
		if fe != nil {
			return fe
		}
		if c.kind == cFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
	case cString:
		s, ok := v.(string)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		*(*string)(p) = s
	case cBytes:
		b, ok := v.([]byte)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		*(*[]byte)(p) = b
	case cSlice:
		a, ok := v.([]any)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		if fe := c.checkSliceSize(len(a)); fe != nil {
			return fe
		}
		data := c.makeSlice(len(a))
		for i, e := range a {
			if fe := c.elem.fromValue(unsafe.Add(data, uintptr(i)*c.elem.size), e); fe != nil {
				return fe.at(index(i))
			}
		}
		*(*sliceHeader)(p) = sliceHeader{data, len(a), len(a)}
	case cMap:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		return c.mapFromMap(p, m)
	case cStruct:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		return c.structFromMap(p, m)
	case cPtr:
		if v == nil {
			return nil
		}
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(c, TypeName(v))
		}
		np := reflect.New(c.elem.rtype).UnsafePointer()
		if fe := c.elem.structFromMap(np, m); fe != nil {
			return fe
		}
		*(*unsafe.Pointer)(p) = np
	case cAny:
		*(*any)(p) = v
	}
	return nil
}

func (c *codec) mapFromMap(p unsafe.Pointer, m map[string]any) *fieldError {
	switch c.mapRep {
	case mapAny:
		// The value model's own type: taken as it is, like a dynamic
		// method's params on the native transport.
		*(*map[string]any)(p) = m
		return nil
	case mapString:
		return mapFromMapOf[string](c, p, m)
	case mapInt64:
		return mapFromMapOf[int64](c, p, m)
	case mapInt:
		return mapFromMapOf[int](c, p, m)
	case mapFloat64:
		return mapFromMapOf[float64](c, p, m)
	case mapBool:
		return mapFromMapOf[bool](c, p, m)
	}
	out := reflect.MakeMapWithSize(c.rtype, len(m))
	for k, e := range m {
		x := reflect.New(c.elem.rtype)
		if fe := c.elem.fromValue(x.UnsafePointer(), e); fe != nil {
			return fe.at(k)
		}
		out.SetMapIndex(reflect.ValueOf(k).Convert(c.rtype.Key()), x.Elem())
	}
	storeMap(p, out)
	return nil
}

// mapFromMapOf builds a map[string]V (p's type, or one with the same
// underlying type) with typed code.
func mapFromMapOf[V any](c *codec, p unsafe.Pointer, m map[string]any) *fieldError {
	out := make(map[string]V, len(m))
	for k, e := range m {
		var x V
		if fe := c.elem.fromValue(unsafe.Pointer(&x), e); fe != nil {
			return fe.at(k)
		}
		out[k] = x
	}
	*(*map[string]V)(p) = out
	return nil
}

// MaxSliceBytes bounds the memory one decoded slice may take (elements ×
// element size): the decoders check counts against their input, but a
// one-byte element (an empty map) can become a large struct.
const MaxSliceBytes = 64 << 20

func (c *codec) checkSliceSize(n int) *fieldError {
	if c.elem.size > 0 && uintptr(n) > MaxSliceBytes/c.elem.size {
		return &fieldError{msg: strconv.Itoa(n) + " elements of " + strconv.Itoa(int(c.elem.size)) +
			" bytes each are over the limit of " + strconv.Itoa(MaxSliceBytes) + " bytes"}
	}
	return nil
}

// storeMap stores the map m at p, which has m's type. A map value is one
// pointer (reflect.Value.UnsafePointer returns it): storing it this way keeps
// p from escaping, as reflect.NewAt(t, p) would make it.
func storeMap(p unsafe.Pointer, m reflect.Value) {
	*(*unsafe.Pointer)(p) = m.UnsafePointer()
}

// loadMap returns the map at p as a reflect.Value.
func loadMap(t reflect.Type, p unsafe.Pointer) reflect.Value {
	mp := *(*unsafe.Pointer)(p)
	return reflect.NewAt(t, unsafe.Pointer(&mp)).Elem()
}

func storeInt(p unsafe.Pointer, size uintptr, i int64) {
	switch size {
	case 1:
		*(*int8)(p) = int8(i)
	case 2:
		*(*int16)(p) = int16(i)
	case 4:
		*(*int32)(p) = int32(i)
	default:
		*(*int64)(p) = i
	}
}

func loadInt(p unsafe.Pointer, size uintptr) int64 {
	switch size {
	case 1:
		return int64(*(*int8)(p))
	case 2:
		return int64(*(*int16)(p))
	case 4:
		return int64(*(*int32)(p))
	}
	return *(*int64)(p)
}

func loadUint(p unsafe.Pointer, size uintptr) uint64 {
	switch size {
	case 1:
		return uint64(*(*uint8)(p))
	case 2:
		return uint64(*(*uint16)(p))
	case 4:
		return uint64(*(*uint32)(p))
	}
	return *(*uint64)(p)
}

// intFromValue converts v for an integer plan: any Go integer, or a float
// with an integral value; then the plan's range.
func (c *codec) intFromValue(v any) (int64, *fieldError) {
	var i int64
	switch x := v.(type) {
	case int64:
		i = x
	case int:
		i = int64(x)
	case int32:
		i = int64(x)
	case int16:
		i = int64(x)
	case int8:
		i = int64(x)
	case uint8:
		i = int64(x)
	case uint16:
		i = int64(x)
	case uint32:
		i = int64(x)
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, c.outOfRange(strconv.FormatUint(uint64(x), 10))
		}
		i = int64(x)
	case uint64:
		if x > math.MaxInt64 {
			return 0, c.outOfRange(strconv.FormatUint(x, 10))
		}
		i = int64(x)
	case float64:
		return c.intFromFloat(x)
	case float32:
		return c.intFromFloat(float64(x))
	default:
		return 0, mismatch(c, TypeName(v))
	}
	return c.checkRange(i)
}

func (c *codec) checkRange(i int64) (int64, *fieldError) {
	if i < c.min || i > c.max {
		return 0, c.outOfRange(strconv.FormatInt(i, 10))
	}
	return i, nil
}

func (c *codec) outOfRange(n string) *fieldError {
	return &fieldError{msg: n + " does not fit in " + c.schema.Type}
}

// intFromFloat takes a float that holds an integer: 3.0 is 3; 3.5 is not an
// integer.
func (c *codec) intFromFloat(f float64) (int64, *fieldError) {
	if f != math.Trunc(f) || math.IsInf(f, 0) {
		return 0, &fieldError{msg: "want integer, got " + strconv.FormatFloat(f, 'g', -1, 64)}
	}
	if f < -9.223372036854775808e18 || f >= 9.223372036854775808e18 {
		return 0, c.outOfRange(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return c.checkRange(int64(f))
}

// floatFromValue converts v for a float plan: a float, or an integer that
// a float64 represents exactly. A float32 plan then rounds to the nearest
// float32; a finite value beyond float32's range is an error.
func (c *codec) floatFromValue(v any) (float64, *fieldError) {
	var f float64
	switch x := v.(type) {
	case float64:
		f = x
	case float32:
		f = float64(x)
	case int64:
		return c.floatFromInt(x)
	case int:
		return c.floatFromInt(int64(x))
	case int32:
		return c.floatFromInt(int64(x))
	case int16:
		return c.floatFromInt(int64(x))
	case int8:
		return c.floatFromInt(int64(x))
	case uint8:
		return c.floatFromInt(int64(x))
	case uint16:
		return c.floatFromInt(int64(x))
	case uint32:
		return c.floatFromInt(int64(x))
	case uint:
		if uint64(x) > math.MaxInt64 {
			return 0, c.outOfRange(strconv.FormatUint(uint64(x), 10))
		}
		return c.floatFromInt(int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return 0, c.outOfRange(strconv.FormatUint(x, 10))
		}
		return c.floatFromInt(int64(x))
	default:
		return 0, mismatch(c, TypeName(v))
	}
	return c.checkFloat32(f)
}

func (c *codec) floatFromInt(i int64) (float64, *fieldError) {
	f := float64(i)
	// float64(i) rounds; it is exact when converting back gives i. 2^63
	// (what MaxInt64 rounds to) does not convert back, so it is excluded
	// first.
	if f >= 9.223372036854775808e18 || int64(f) != i {
		return 0, &fieldError{msg: strconv.FormatInt(i, 10) + " cannot be represented exactly as a float64"}
	}
	return c.checkFloat32(f)
}

func (c *codec) checkFloat32(f float64) (float64, *fieldError) {
	if c.kind == cFloat32 && !math.IsInf(f, 0) && math.IsInf(float64(float32(f)), 0) {
		return 0, c.outOfRange(strconv.FormatFloat(f, 'g', -1, 64))
	}
	return f, nil
}

// encodeMap returns the struct at p as a params or result map.
func (c *codec) encodeMap(p unsafe.Pointer) (map[string]any, error) {
	m, fe := c.structToMap(p)
	if fe != nil {
		return nil, fe.toError()
	}
	return m, nil
}

// structToMap writes every field under its wire name; a nil pointer field
// is left out.
func (c *codec) structToMap(p unsafe.Pointer) (map[string]any, *fieldError) {
	m := make(map[string]any, len(c.fields))
	for i := range c.fields {
		f := &c.fields[i]
		fp := unsafe.Add(p, f.offset)
		if f.c.kind == cPtr && *(*unsafe.Pointer)(fp) == nil {
			continue
		}
		v, fe := f.c.toValue(fp)
		if fe != nil {
			return nil, fe.at(f.name)
		}
		m[f.name] = v
	}
	return m, nil
}

// toValue returns the value at p in the value model: integers as int64,
// floats as float64, nil slices and maps as empty ones.
func (c *codec) toValue(p unsafe.Pointer) (any, *fieldError) {
	switch c.kind {
	case cBool:
		return *(*bool)(p), nil
	case cInt:
		return loadInt(p, c.size), nil
	case cUint:
		u := loadUint(p, c.size)
		if u > math.MaxInt64 {
			return nil, &fieldError{msg: strconv.FormatUint(u, 10) + " does not fit in the value model's int64"}
		}
		return int64(u), nil
	case cFloat32:
		return float64(*(*float32)(p)), nil
	case cFloat64:
		return *(*float64)(p), nil
	case cString:
		return *(*string)(p), nil
	case cBytes:
		b := *(*[]byte)(p)
		if b == nil {
			b = []byte{}
		}
		return b, nil
	case cSlice:
		h := (*sliceHeader)(p)
		out := make([]any, h.len)
		for i := range out {
			v, fe := c.elem.toValue(unsafe.Add(h.data, uintptr(i)*c.elem.size))
			if fe != nil {
				return nil, fe.at(index(i))
			}
			out[i] = v
		}
		return out, nil
	case cMap:
		return c.mapToValue(p)
	case cStruct:
		return c.structToMap(p)
	case cPtr:
		sp := *(*unsafe.Pointer)(p)
		if sp == nil {
			return nil, nil
		}
		return c.elem.structToMap(sp)
	case cAny:
		return *(*any)(p), nil
	}
	return nil, nil
}

func (c *codec) mapToValue(p unsafe.Pointer) (any, *fieldError) {
	switch c.mapRep {
	case mapAny:
		m := *(*map[string]any)(p)
		if m == nil {
			m = map[string]any{}
		}
		return m, nil
	case mapString:
		return mapToValueOf[string](c, p)
	case mapInt64:
		return mapToValueOf[int64](c, p)
	case mapInt:
		return mapToValueOf[int](c, p)
	case mapFloat64:
		return mapToValueOf[float64](c, p)
	case mapBool:
		return mapToValueOf[bool](c, p)
	}
	mv := loadMap(c.rtype, p)
	out := make(map[string]any, mv.Len())
	x := reflect.New(c.elem.rtype)
	it := mv.MapRange()
	for it.Next() {
		k := it.Key().String()
		x.Elem().Set(it.Value())
		v, fe := c.elem.toValue(x.UnsafePointer())
		if fe != nil {
			return nil, fe.at(k)
		}
		out[k] = v
	}
	return out, nil
}

func mapToValueOf[V any](c *codec, p unsafe.Pointer) (any, *fieldError) {
	m := *(*map[string]V)(p)
	out := make(map[string]any, len(m))
	for k, v := range m {
		x, fe := c.elem.toValue(unsafe.Pointer(&v))
		if fe != nil {
			return nil, fe.at(k)
		}
		out[k] = x
	}
	return out, nil
}
