package sdk

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The type names a Schema uses. Integer types carry their range: a field
// declared int32 accepts only integers that fit in an int32. Go's int and
// uint are named by their size on the platform that built the module
// (int64 and uint64 on every 64-bit platform and on wasm).
const (
	TypeBool    = "bool"
	TypeInt8    = "int8"
	TypeInt16   = "int16"
	TypeInt32   = "int32"
	TypeInt64   = "int64"
	TypeUint8   = "uint8"
	TypeUint16  = "uint16"
	TypeUint32  = "uint32"
	TypeUint64  = "uint64"
	TypeFloat32 = "float32"
	TypeFloat64 = "float64"
	TypeString  = "string"
	TypeBytes   = "bytes"
	TypeArray   = "array"  // a list; Items is the element schema
	TypeMap     = "map"    // an object with free keys; Items is the value schema
	TypeObject  = "object" // a struct; Fields lists its fields
	TypeAny     = "any"    // any value-model value
)

// Schema describes the shape of a value: a method's params or result, or a
// field within them. A typed method (see Func) has object schemas derived
// from its Go structs; a dynamic method (see Module.Handle) has the open
// schema {"type":"map","items":{"type":"any"}}: an object with any keys and
// values, which promises nothing that can be checked.
//
// Schemas in a Manifest are canonical: fields are sorted by id, aliases by
// name, and a default equal to its type's zero value is left out. Treat them
// as read-only.
type Schema struct {
	Type string `json:"type"`
	// Nullable is set on an object that may be absent or null (a pointer to
	// a struct in Go).
	Nullable bool `json:"nullable,omitempty"`
	// Items is the element schema of an array and the value schema of a map.
	Items *Schema `json:"items,omitempty"`
	// Fields are an object's fields, sorted by id.
	Fields []Field `json:"fields,omitempty"`
}

// Field is one field of an object schema.
type Field struct {
	// Name is the field's name on the wire.
	Name string `json:"name"`
	// ID is the field's stable identity: it stays when the field is renamed,
	// which is how a rename is told from a removal plus an addition.
	ID int `json:"id"`
	// Required fields must be present (and not null) in params.
	Required bool `json:"required,omitempty"`
	// Default is what an optional field is when params leave it out: a bool,
	// int64, float64 or string, matching the field's type; nil means the
	// type's zero value.
	Default any `json:"default,omitempty"`
	// Aliases are other names accepted in params, typically old names.
	Aliases []string `json:"aliases,omitempty"`
	Schema
}

// DynamicSchema returns the open schema of a dynamic (map-based) method's
// params and result: {"type":"map","items":{"type":"any"}}.
func DynamicSchema() *Schema {
	return &Schema{Type: TypeMap, Items: &Schema{Type: TypeAny}}
}

// IsDynamic reports whether s is the open schema of a dynamic method (a nil
// schema counts as one).
func (s *Schema) IsDynamic() bool {
	return s == nil || s.Type == TypeMap && s.Items != nil && s.Items.Type == TypeAny
}

// Clone returns a deep copy of s.
func (s *Schema) Clone() *Schema {
	if s == nil {
		return nil
	}
	c := s.cloneValue()
	return &c
}

func (s Schema) cloneValue() Schema {
	c := s
	c.Items = s.Items.Clone()
	if s.Fields != nil {
		c.Fields = make([]Field, len(s.Fields))
		for i, f := range s.Fields {
			f.Schema = f.Schema.cloneValue()
			if f.Aliases != nil {
				f.Aliases = append([]string{}, f.Aliases...)
			}
			c.Fields[i] = f
		}
	}
	return c
}

// String renders s compactly, for people:
//
//	{sku!: string, qty!: int64, coupon: string = "NONE" (alias code, voucher)}
//
// A '!' marks a required field, '?' a nullable object.
func (s *Schema) String() string {
	var b strings.Builder
	s.write(&b)
	return b.String()
}

func (s *Schema) write(b *strings.Builder) {
	if s == nil {
		b.WriteString("map[any]")
		return
	}
	switch s.Type {
	case TypeArray:
		b.WriteString("[]")
		s.Items.write(b)
	case TypeMap:
		b.WriteString("map[")
		s.Items.write(b)
		b.WriteString("]")
	case TypeObject:
		b.WriteString("{")
		for i, f := range s.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(f.Name)
			if f.Required {
				b.WriteString("!")
			}
			b.WriteString(": ")
			f.Schema.write(b)
			if f.Default != nil {
				b.WriteString(" = ")
				b.WriteString(formatDefault(f.Default))
			}
			if len(f.Aliases) > 0 {
				b.WriteString(" (alias ")
				b.WriteString(strings.Join(f.Aliases, ", "))
				b.WriteString(")")
			}
		}
		b.WriteString("}")
		if s.Nullable {
			b.WriteString("?")
		}
	default:
		b.WriteString(s.Type)
	}
}

func formatDefault(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

// intRange returns the range of an integer type name; ok is false for other
// types. The value model's integers are int64, so uint64 tops out at
// MaxInt64 on the wire.
func intRange(typ string) (min, max int64, ok bool) {
	switch typ {
	case TypeInt8:
		return math.MinInt8, math.MaxInt8, true
	case TypeInt16:
		return math.MinInt16, math.MaxInt16, true
	case TypeInt32:
		return math.MinInt32, math.MaxInt32, true
	case TypeInt64:
		return math.MinInt64, math.MaxInt64, true
	case TypeUint8:
		return 0, math.MaxUint8, true
	case TypeUint16:
		return 0, math.MaxUint16, true
	case TypeUint32:
		return 0, math.MaxUint32, true
	case TypeUint64:
		return 0, math.MaxInt64, true
	}
	return 0, 0, false
}

// IntRange returns the range of values an integer schema type accepts on
// the wire; ok is false when typ is not an integer type.
func IntRange(typ string) (min, max int64, ok bool) { return intRange(typ) }

func isFloatType(typ string) bool { return typ == TypeFloat32 || typ == TypeFloat64 }

func isScalarType(typ string) bool {
	_, _, isInt := intRange(typ)
	return isInt || isFloatType(typ) || typ == TypeBool || typ == TypeString
}

// parseDefault reads a default written in a struct tag for a field of the
// schema type typ. A default equal to the zero value comes back as nil.
func parseDefault(typ, text string, quoted bool) (any, error) {
	if quoted && typ != TypeString {
		return nil, fmt.Errorf("a quoted default is only for string fields")
	}
	var v any
	switch {
	case typ == TypeString:
		v = text
	case typ == TypeBool:
		switch text {
		case "true":
			v = true
		case "false":
			v = false
		default:
			return nil, fmt.Errorf("default %q is not a bool (true or false)", text)
		}
	case isFloatType(typ):
		bits := 64
		if typ == TypeFloat32 {
			bits = 32
		}
		f, err := strconv.ParseFloat(text, bits)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("default %q is not a finite %s", text, typ)
		}
		v = f
	default:
		min, max, ok := intRange(typ)
		if !ok {
			return nil, fmt.Errorf("a default is only allowed on bool, integer, float and string fields, not %s", typ)
		}
		i, err := strconv.ParseInt(text, 10, 64)
		if err != nil || i < min || i > max {
			return nil, fmt.Errorf("default %q is not a %s (a base-10 integer from %d to %d)", text, typ, min, max)
		}
		v = i
	}
	return normalizeDefault(v), nil
}

// normalizeDefault maps a zero-valued default to nil: "default=0" and no
// default mean the same, so they must look the same to Diff and fingerprints.
func normalizeDefault(v any) any {
	switch x := v.(type) {
	case bool:
		if !x {
			return nil
		}
	case int64:
		if x == 0 {
			return nil
		}
	case float64:
		if x == 0 {
			return nil
		}
	case string:
		if x == "" {
			return nil
		}
	}
	return v
}

// sortFields puts fields in canonical order: by id, aliases by name.
func sortFields(fs []Field) {
	sort.Slice(fs, func(i, j int) bool { return fs[i].ID < fs[j].ID })
	for i := range fs {
		sort.Strings(fs[i].Aliases)
	}
}

// canonical returns the schema as a value-model value with only the keys
// that carry information, the form fingerprints hash. Field order is by id
// (schemas are kept that way); aliases are sorted.
func (s *Schema) canonical() map[string]any {
	if s == nil {
		return DynamicSchema().canonical()
	}
	m := map[string]any{"type": s.Type}
	if s.Nullable {
		m["nullable"] = true
	}
	if s.Items != nil {
		m["items"] = s.Items.canonical()
	}
	if len(s.Fields) > 0 {
		fs := make([]any, len(s.Fields))
		for i, f := range s.Fields {
			c := f.Schema.canonical()
			c["name"] = f.Name
			c["id"] = int64(f.ID)
			if f.Required {
				c["required"] = true
			}
			if f.Default != nil {
				c["default"] = f.Default
			}
			if len(f.Aliases) > 0 {
				as := make([]any, len(f.Aliases))
				for j, a := range f.Aliases {
					as[j] = a
				}
				c["aliases"] = as
			}
			fs[i] = c
		}
		m["fields"] = fs
	}
	return m
}
