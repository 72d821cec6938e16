package sdk

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unsafe"
)

// A plan (a *codec) says how one Go type crosses the boundary: its schema,
// and how to move its values to and from params maps and CBOR. Plans are
// built once per type with reflect, at registration; decoding and encoding
// then work on the value's memory through field offsets and a switch on the
// plan's kind, without reflect, except to allocate the backing arrays of
// slices and maps whose element types the plan has no typed code for.

type codecKind uint8

const (
	cBool codecKind = iota + 1
	cInt            // signed integer of size 1, 2, 4 or 8
	cUint           // unsigned integer of size 1, 2, 4 or 8
	cFloat32
	cFloat64
	cString
	cBytes
	cSlice
	cMap
	cStruct
	cPtr // pointer to struct
	cAny
)

// mapRep says how a map[string]T is built: typed code for common T,
// reflect otherwise.
type mapRep uint8

const (
	mapGeneric mapRep = iota
	mapAny
	mapString
	mapInt64
	mapInt
	mapFloat64
	mapBool
)

type codec struct {
	kind     codecKind
	rtype    reflect.Type
	size     uintptr // of a Go value of rtype
	min, max int64   // integers: the range accepted on the wire
	elem     *codec  // slice element, map value, pointer target
	schema   *Schema

	// structs
	fields []fieldCodec
	names  []nameRef          // every accepted name; searched when few
	index  map[string]nameRef // the same, when many

	makeSlice func(n int) unsafe.Pointer // slices: a zeroed backing array of n elements
	mapRep    mapRep                     // maps

	fast   *fastPlan // structs of at most maxFastFields fields: see codec_fast.go
	hasPtr bool      // structs: a pointer field, which is left out when nil
}

type fieldCodec struct {
	name     string   // wire name
	aliases  []string // other accepted names, in priority order
	offset   uintptr
	c        *codec
	required bool
	def      any     // value-model default, nil for the zero value
	key      fastKey // the wire name as CBOR
}

// nameRef points from an accepted name to its field. rank orders a field's
// names: 0 is the wire name, 1… the aliases. When params carry several names
// of one field, the lowest rank wins.
type nameRef struct {
	name  string
	field uint16
	rank  uint8
}

// maxFields bounds a struct's fields (and a field's aliases) so that ranks
// and field indexes fit in small integers.
const maxFields = 1 << 12

// want names what a plan accepts, in the words of error messages.
func (c *codec) want() string {
	switch c.kind {
	case cBool:
		return "bool"
	case cInt, cUint:
		return "integer"
	case cFloat32, cFloat64:
		return "number"
	case cString:
		return "string"
	case cBytes:
		return "bytes"
	case cSlice:
		return "array"
	case cAny:
		return "a value"
	}
	return "object"
}

// wantArticle is want with an article: `"qty" is required (an integer)`.
func (c *codec) wantArticle() string {
	switch w := c.want(); w {
	case "integer", "array", "object":
		return "an " + w
	case "bytes", "a value":
		return w
	default:
		return "a " + w
	}
}

var plans sync.Map // reflect.Type → planResult

type planResult struct {
	c   *codec
	err error
}

// planFor returns the plan of a struct type, building it on first use. Its
// error lists every problem with the type's fields and tags.
func planFor(t reflect.Type) (*codec, error) {
	if r, ok := plans.Load(t); ok {
		r := r.(planResult)
		return r.c, r.err
	}
	var r planResult
	if t == nil || t.Kind() != reflect.Struct {
		r.err = fmt.Errorf("%v is not a struct: params and results are structs whose fields carry hotmod tags", t)
	} else {
		b := &planBuilder{building: map[reflect.Type]bool{}}
		r.c = b.build(t, t.String())
		if len(b.problems) > 0 {
			r.c, r.err = nil, errors.New(strings.Join(b.problems, "; "))
		}
	}
	plans.Store(t, r)
	return r.c, r.err
}

type planBuilder struct {
	problems []string
	building map[reflect.Type]bool // struct types on the current path: recursion
}

func (b *planBuilder) problem(format string, args ...any) {
	b.problems = append(b.problems, fmt.Sprintf(format, args...))
}

var (
	stringType  = reflect.TypeOf("")
	int64Type   = reflect.TypeOf(int64(0))
	intType     = reflect.TypeOf(0)
	float64Type = reflect.TypeOf(float64(0))
	boolType    = reflect.TypeOf(false)
	anyType     = reflect.TypeOf((*any)(nil)).Elem()
)

// build returns the plan of t, or nil after recording why t cannot cross the
// boundary. where names the place for messages, e.g. "main.quoteIn.Items".
func (b *planBuilder) build(t reflect.Type, where string) *codec {
	c := &codec{rtype: t, size: t.Size()}
	switch t.Kind() {
	case reflect.Bool:
		c.kind, c.schema = cBool, &Schema{Type: TypeBool}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.kind = cInt
		c.schema = &Schema{Type: "int" + strconv.Itoa(int(8*t.Size()))}
		c.min, c.max, _ = intRange(c.schema.Type)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.kind = cUint
		c.schema = &Schema{Type: "uint" + strconv.Itoa(int(8*t.Size()))}
		c.min, c.max, _ = intRange(c.schema.Type)
	case reflect.Float32:
		c.kind, c.schema = cFloat32, &Schema{Type: TypeFloat32}
	case reflect.Float64:
		c.kind, c.schema = cFloat64, &Schema{Type: TypeFloat64}
	case reflect.String:
		c.kind, c.schema = cString, &Schema{Type: TypeString}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			c.kind, c.schema = cBytes, &Schema{Type: TypeBytes}
			break
		}
		c.elem = b.build(t.Elem(), where+"[]")
		if c.elem == nil {
			return nil
		}
		c.kind, c.schema = cSlice, &Schema{Type: TypeArray, Items: c.elem.schema}
		c.makeSlice = sliceMaker(t)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			b.problem("%s: %s is not supported: map keys must be strings", where, t)
			return nil
		}
		c.elem = b.build(t.Elem(), where+"{}")
		if c.elem == nil {
			return nil
		}
		c.kind, c.schema = cMap, &Schema{Type: TypeMap, Items: c.elem.schema}
		c.mapRep = mapRepOf(t)
	case reflect.Struct:
		if b.building[t] {
			b.problem("%s: %s refers to itself: recursive types are not supported (a schema must be finite)", where, t)
			return nil
		}
		b.building[t] = true
		defer delete(b.building, t)
		if !b.buildStruct(c, t, where) {
			return nil
		}
	case reflect.Pointer:
		if t.Elem().Kind() != reflect.Struct {
			b.problem("%s: %s is not supported: pointers are supported only to structs (optional objects)", where, t)
			return nil
		}
		c.elem = b.build(t.Elem(), where)
		if c.elem == nil {
			return nil
		}
		s := *c.elem.schema
		s.Nullable = true
		c.kind, c.schema = cPtr, &s
	case reflect.Interface:
		if t.NumMethod() != 0 {
			b.problem("%s: %s is not supported: the only interface type allowed is any", where, t)
			return nil
		}
		c.kind, c.schema = cAny, &Schema{Type: TypeAny}
	default:
		b.problem("%s: %s is not supported (use bool, integers, floats, string, []byte, slices, map[string]T, structs, pointers to structs or any)", where, t)
		return nil
	}
	return c
}

// sliceMaker returns the allocator of t's backing arrays: make for common
// element types, reflect.MakeSlice for the others.
func sliceMaker(t reflect.Type) func(n int) unsafe.Pointer {
	switch t.Elem() {
	case int64Type:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]int64, n))) }
	case intType:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]int, n))) }
	case stringType:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]string, n))) }
	case float64Type:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]float64, n))) }
	case boolType:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]bool, n))) }
	case anyType:
		return func(n int) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(make([]any, n))) }
	}
	return func(n int) unsafe.Pointer { return reflect.MakeSlice(t, n, n).UnsafePointer() }
}

func mapRepOf(t reflect.Type) mapRep {
	if t.Key() != stringType {
		return mapGeneric
	}
	switch t.Elem() {
	case anyType:
		return mapAny
	case stringType:
		return mapString
	case int64Type:
		return mapInt64
	case intType:
		return mapInt
	case float64Type:
		return mapFloat64
	case boolType:
		return mapBool
	}
	return mapGeneric
}

// sliceHeader is the memory layout of every Go slice.
type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

func (b *planBuilder) buildStruct(c *codec, t reflect.Type, where string) bool {
	c.kind = cStruct
	schema := &Schema{Type: TypeObject}
	ok := true
	byName := map[string]string{} // accepted name → Go field that has it
	byID := map[int]string{}
	type planned struct {
		offset uintptr
		c      *codec
	}
	plannedByID := map[int]planned{}
	exported, maxID := 0, 0
	for i := 0; i < t.NumField(); i++ { // for the hint to untagged fields
		if ft, err := parseTag(t.Field(i).Tag.Get("hotmod")); err == nil && ft.id > maxID {
			maxID = ft.id
		}
	}
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, tagged := sf.Tag.Lookup("hotmod")
		if sf.IsExported() {
			exported++
		}
		if tag == "-" {
			continue
		}
		at := where + "." + sf.Name
		if !sf.IsExported() {
			if tagged {
				b.problem("%s: the field is unexported, so it cannot carry a hotmod tag: export it or drop the tag", at)
				ok = false
			}
			continue
		}
		if !tagged {
			b.problem("%s: no hotmod tag: give it one, e.g. `hotmod:\"%s,id=%d\"`, or `hotmod:\"-\"` to leave it out",
				at, suggestName(sf.Name), maxID+1)
			maxID++
			ok = false
			continue
		}
		ft, err := parseTag(tag)
		if err != nil {
			b.problem("%s: tag %q: %v", at, tag, err)
			ok = false
			continue
		}
		fc := b.build(sf.Type, at)
		if fc == nil {
			ok = false
			continue
		}
		field := Field{Name: ft.name, ID: ft.id, Required: ft.required, Aliases: ft.aliases, Schema: *fc.schema}
		if ft.required && fc.kind == cPtr {
			b.problem("%s: tag %q: a pointer field is optional by nature: drop required, or use a struct", at, tag)
			ok = false
		}
		if ft.hasDefault {
			if ft.required {
				b.problem("%s: tag %q: a required field cannot have a default", at, tag)
				ok = false
			} else if d, err := parseDefault(fc.schema.Type, ft.def, ft.defQuoted); err != nil {
				b.problem("%s: tag %q: %v", at, tag, err)
				ok = false
			} else {
				field.Default = d
			}
		}
		if prev, dup := byID[ft.id]; dup {
			b.problem("%s: id %d is already used by %s", at, ft.id, prev)
			ok = false
		}
		byID[ft.id] = sf.Name
		plannedByID[ft.id] = planned{sf.Offset, fc}
		for _, n := range append([]string{ft.name}, ft.aliases...) {
			if prev, dup := byName[n]; dup {
				b.problem("%s: name %q is already used by %s", at, n, prev)
				ok = false
			}
			byName[n] = sf.Name
		}
		schema.Fields = append(schema.Fields, field)
	}
	if exported == 0 && t.NumField() > 0 {
		b.problem("%s: %s has no exported fields, so nothing of it would cross the boundary (a type such as time.Time must travel as a string or an integer)", where, t)
		return false
	}
	if len(schema.Fields) > maxFields {
		b.problem("%s: more than %d fields", where, maxFields)
		return false
	}
	if !ok {
		return false
	}
	sortFields(schema.Fields) // canonical: by id; aliases sorted
	// The codec's fields follow the schema's order (by id), so the first
	// error of several is the same on every path that decodes a map.
	for fi, f := range schema.Fields {
		pl := plannedByID[f.ID]
		c.fields = append(c.fields, fieldCodec{name: f.Name, aliases: f.Aliases, offset: pl.offset,
			c: pl.c, required: f.Required, def: f.Default})
		for rank, n := range append([]string{f.Name}, f.Aliases...) {
			c.names = append(c.names, nameRef{name: n, field: uint16(fi), rank: uint8(rank)})
		}
	}
	if len(c.names) > 8 {
		c.index = make(map[string]nameRef, len(c.names))
		for _, r := range c.names {
			c.index[r.name] = r
		}
	}
	c.schema = schema
	c.prepareFast()
	return true
}

// lookup finds the field a params key names.
func (c *codec) lookup(key []byte) (nameRef, bool) {
	if c.index != nil {
		r, ok := c.index[string(key)]
		return r, ok
	}
	for _, r := range c.names {
		if r.name == string(key) {
			return r, true
		}
	}
	return nameRef{}, false
}

// suggestName turns a Go field name into a wire name for a hint: UnitCents →
// unit_cents.
func suggestName(goName string) string {
	var b strings.Builder
	for i, r := range goName {
		if r >= 'A' && r <= 'Z' {
			if i > 0 && !(goName[i-1] >= 'A' && goName[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// fieldTag is a parsed hotmod struct tag.
type fieldTag struct {
	name       string
	id         int
	required   bool
	hasDefault bool
	def        string
	defQuoted  bool
	aliases    []string
}

// parseTag reads a hotmod tag; see Func for the grammar.
func parseTag(tag string) (fieldTag, error) {
	var ft fieldTag
	parts, err := splitTag(tag)
	if err != nil {
		return ft, err
	}
	ft.name = strings.TrimSpace(parts[0])
	if !wireNameRE.MatchString(ft.name) {
		return ft, fmt.Errorf("the name %q must start with a letter or '_' and have only letters, digits, '_' and '-'", ft.name)
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		key, val, hasVal := strings.Cut(p, "=")
		if seen[key] {
			return ft, fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		switch {
		case key == "required" && !hasVal:
			ft.required = true
		case key == "id" && hasVal:
			id, err := strconv.Atoi(val)
			if err != nil || id < 1 || id > math.MaxInt32 {
				return ft, fmt.Errorf("id %q is not an integer from 1 to %d", val, math.MaxInt32)
			}
			ft.id = id
		case key == "default" && hasVal:
			ft.hasDefault = true
			val = strings.TrimSpace(val)
			if strings.HasPrefix(val, `"`) {
				s, err := strconv.Unquote(val)
				if err != nil {
					return ft, fmt.Errorf("default %s is not a valid quoted string", val)
				}
				ft.def, ft.defQuoted = s, true
			} else {
				ft.def = val
			}
		case key == "alias" && hasVal:
			for _, a := range strings.Split(val, "|") {
				a = strings.TrimSpace(a)
				if !wireNameRE.MatchString(a) {
					return ft, fmt.Errorf("alias %q must start with a letter or '_' and have only letters, digits, '_' and '-'", a)
				}
				ft.aliases = append(ft.aliases, a)
			}
			if len(ft.aliases) > 254 {
				return ft, fmt.Errorf("more than 254 aliases")
			}
			sort.Strings(ft.aliases)
		case p == "":
			return ft, fmt.Errorf("empty option (a stray comma?)")
		default:
			return ft, fmt.Errorf("unknown option %q (the options are id=N, required, default=VALUE and alias=NAME|NAME)", p)
		}
	}
	if ft.id == 0 {
		return ft, fmt.Errorf("no id: every field needs a stable id, e.g. `hotmod:\"%s,id=1\"`", ft.name)
	}
	return ft, nil
}

// splitTag splits a tag at the commas that are not inside a quoted default.
func splitTag(tag string) ([]string, error) {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(tag); i++ {
		switch tag[i] {
		case '\\':
			if quoted {
				i++
			}
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				parts = append(parts, tag[start:i])
				start = i + 1
			}
		}
	}
	if quoted {
		return nil, fmt.Errorf("a quoted default has no closing quote")
	}
	return append(parts, tag[start:]), nil
}
