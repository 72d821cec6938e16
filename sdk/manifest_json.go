package sdk

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendManifestJSON appends man as json.Marshal writes it, byte for byte
// (TestManifestJSON holds it to that). The wasm guest writes its manifest
// with it, so that encoding/json (≈ 140 KB of code) stays out of every
// guest. The only values it cannot write are defaults outside the schema
// rules (a bool, int64, float64 or string) and non-finite floats, which
// json.Marshal refuses too.
func appendManifestJSON(b []byte, man Manifest) ([]byte, error) {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, man.Name)
	b = append(b, `,"version":`...)
	b = appendJSONString(b, man.Version)
	b = append(b, `,"methods":`...)
	if man.Methods == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, mi := range man.Methods {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendMethodJSON(b, mi); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"sdk":`...)
	b = appendJSONString(b, man.SDK)
	b = append(b, `,"fingerprint":`...)
	b = appendJSONString(b, man.Fingerprint)
	if len(man.Needs) > 0 {
		b = append(b, `,"needs":`...)
		b = appendJSONStrings(b, man.Needs)
	}
	if len(man.Requires) > 0 {
		b = append(b, `,"requires":[`...)
		for i, r := range man.Requires {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if r.Module != "" {
				b = append(b, `"module":`...)
				b = appendJSONString(b, r.Module)
				b = append(b, ',')
			}
			if r.Capability != "" {
				b = append(b, `"capability":`...)
				b = appendJSONString(b, r.Capability)
				b = append(b, ',')
			}
			b = append(b, `"range":`...)
			b = appendJSONString(b, r.Range)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(man.Provides) > 0 {
		b = append(b, `,"provides":[`...)
		for i, p := range man.Provides {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"capability":`...)
			b = appendJSONString(b, p.Capability)
			b = append(b, `,"version":`...)
			b = appendJSONString(b, p.Version)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}'), nil
}

func appendMethodJSON(b []byte, mi MethodInfo) ([]byte, error) {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, mi.Name)
	if mi.Doc != "" {
		b = append(b, `,"doc":`...)
		b = appendJSONString(b, mi.Doc)
	}
	var err error
	b = append(b, `,"params":`...)
	if b, err = appendSchemaPtrJSON(b, mi.Params); err != nil {
		return nil, err
	}
	b = append(b, `,"result":`...)
	if b, err = appendSchemaPtrJSON(b, mi.Result); err != nil {
		return nil, err
	}
	b = append(b, `,"fingerprint":`...)
	b = appendJSONString(b, mi.Fingerprint)
	if mi.Timeout != "" {
		b = append(b, `,"timeout":`...)
		b = appendJSONString(b, mi.Timeout)
	}
	return append(b, '}'), nil
}

func appendSchemaPtrJSON(b []byte, s *Schema) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	b = append(b, '{')
	b, err := appendSchemaFieldsJSON(b, s)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendSchemaFieldsJSON appends a schema's keys, without braces: a Field
// embeds its Schema, whose keys json.Marshal writes inline.
func appendSchemaFieldsJSON(b []byte, s *Schema) ([]byte, error) {
	b = append(b, `"type":`...)
	b = appendJSONString(b, s.Type)
	if s.Nullable {
		b = append(b, `,"nullable":true`...)
	}
	var err error
	if s.Items != nil {
		b = append(b, `,"items":`...)
		if b, err = appendSchemaPtrJSON(b, s.Items); err != nil {
			return nil, err
		}
	}
	if len(s.Fields) > 0 {
		b = append(b, `,"fields":[`...)
		for i := range s.Fields {
			f := &s.Fields[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, f.Name)
			b = append(b, `,"id":`...)
			b = strconv.AppendInt(b, int64(f.ID), 10)
			if f.Required {
				b = append(b, `,"required":true`...)
			}
			if f.Default != nil {
				b = append(b, `,"default":`...)
				if b, err = appendJSONDefault(b, f.Default); err != nil {
					return nil, err
				}
			}
			if len(f.Aliases) > 0 {
				b = append(b, `,"aliases":`...)
				b = appendJSONStrings(b, f.Aliases)
			}
			b = append(b, ',')
			if b, err = appendSchemaFieldsJSON(b, &f.Schema); err != nil {
				return nil, err
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return b, nil
}

func appendJSONDefault(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case bool:
		return strconv.AppendBool(b, x), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case string:
		return appendJSONString(b, x), nil
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil, Errorf(CodeInternal, "a default of %s cannot be written as JSON", strconv.FormatFloat(x, 'g', -1, 64))
		}
		// As encoding/json writes a float64: like %g, with its cutoffs.
		format := byte('f')
		if abs := math.Abs(x); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			format = 'e'
		}
		b = strconv.AppendFloat(b, x, format, -1, 64)
		if n := len(b); format == 'e' && n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1] // e-09 → e-9
			b = b[:n-1]
		}
		return b, nil
	}
	return nil, Errorf(CodeInternal, "a default of type %s is outside the schema rules", TypeName(v))
}

func appendJSONStrings(b []byte, list []string) []byte {
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// appendJSONString appends s quoted as json.Marshal quotes it: HTML-safe
// (<, > and & escaped), control characters escaped, invalid UTF-8 as
// U+FFFD, and U+2028 and U+2029 escaped.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
