package sdk

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxManifestSize is the largest manifest ParseManifest reads.
const MaxManifestSize = 4 << 20

// ParseManifest reads a manifest in its JSON form (json.Marshal of a
// Manifest, as `hotmod contract export` writes it) and checks it as the
// host checks a module's own: names, versions, schemas, fingerprints. It is
// strict, because a compatibility verdict drawn from a misread manifest is
// worse than none:
//
//   - keys are matched exactly; an unknown key is an error (a manifest from
//     a newer SDK may say something this one cannot judge: upgrade hotmod),
//     and so is a key given twice;
//   - the input must be valid UTF-8 holding exactly one JSON object;
//   - ids and integer defaults must be integer literals within range; a
//     default must match its field's type, and a zero default is dropped (it
//     means the same as none);
//   - fingerprints may be left out, and are then computed; given, they must
//     match the manifest's schemas, or the file was edited by hand.
//
// Methods come back sorted by name, fields by id and aliases by name, as
// Module.Manifest gives them. Errors say where: `methods[0].params.fields[1]:
// unknown key "nulable"`.
func ParseManifest(data []byte) (Manifest, error) {
	var man Manifest
	if len(data) > MaxManifestSize {
		return man, fmt.Errorf("manifest: %d bytes is over the limit of %d", len(data), MaxManifestSize)
	}
	if !utf8.Valid(data) {
		return man, errors.New("manifest: the input is not valid UTF-8")
	}
	tree, err := readJSON(data)
	if err != nil {
		return man, fmt.Errorf("manifest: %w", err)
	}
	p := &manifestParser{}
	man = p.manifest(tree)
	if p.err != nil {
		return Manifest{}, fmt.Errorf("manifest: %w", p.err)
	}
	return man, nil
}

// readJSON parses data into a tree of map[string]any, []any, string,
// json.Number, bool and nil, refusing duplicate keys and trailing data.
func readJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := readJSONValue(dec, 0)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, errors.New("unexpected end of input")
	}
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the manifest object at byte %d", dec.InputOffset())
	}
	return v, nil
}

// maxJSONDepth bounds the nesting of a manifest (schemas are bounded by
// MaxDepth; each level of schema is at most three levels of JSON).
const maxJSONDepth = 4*MaxDepth + 8

func readJSONValue(dec *json.Decoder, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, fmt.Errorf("nested deeper than %d levels at byte %d", maxJSONDepth, dec.InputOffset())
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			m := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k := kt.(string) // the decoder allows only strings here
				if _, dup := m[k]; dup {
					return nil, fmt.Errorf("key %q is given twice in one object (at byte %d)", k, dec.InputOffset())
				}
				if m[k], err = readJSONValue(dec, depth+1); err != nil {
					return nil, err
				}
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return m, nil
		case '[':
			a := []any{}
			for dec.More() {
				v, err := readJSONValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return a, nil
		}
		return nil, fmt.Errorf("unexpected %q at byte %d", t, dec.InputOffset())
	}
	return tok, nil
}

// manifestParser converts the JSON tree, keeping the first error.
type manifestParser struct{ err error }

func (p *manifestParser) fail(path, format string, args ...any) {
	if p.err == nil {
		if path != "" {
			format = path + ": " + format
		}
		p.err = fmt.Errorf(format, args...)
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a bool"
	case json.Number:
		return "a number"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// object returns v as an object whose keys are all among keys.
func (p *manifestParser) object(v any, path string, keys ...string) map[string]any {
	m, ok := v.(map[string]any)
	if !ok {
		p.fail(path, "want an object, got %s", jsonKind(v))
		return nil
	}
	var unknown []string
	for k := range m {
		known := false
		for _, want := range keys {
			if k == want {
				known = true
				break
			}
		}
		if !known {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		p.fail(path, "unknown key %s (known: %s); a manifest from a newer hotmod needs a newer hotmod to read it",
			strings.Join(unknown, ", "), strings.Join(keys, ", "))
		return nil
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// str returns m[key] as a string; a missing key is "" and an error when
// required.
func (p *manifestParser) str(m map[string]any, path, key string, required bool) string {
	v, ok := m[key]
	if !ok {
		if required {
			p.fail(path, "%q is missing", key)
		}
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.fail(join(path, key), "want a string, got %s", jsonKind(v))
	}
	return s
}

func (p *manifestParser) boolean(m map[string]any, path, key string) bool {
	v, ok := m[key]
	if !ok {
		return false
	}
	b, ok := v.(bool)
	if !ok {
		p.fail(join(path, key), "want a bool, got %s", jsonKind(v))
	}
	return b
}

func (p *manifestParser) manifest(tree any) Manifest {
	var man Manifest
	m := p.object(tree, "", "name", "version", "methods", "sdk", "fingerprint", "needs", "requires", "provides")
	if m == nil {
		return man
	}
	man.Needs = p.needs(m)
	man.Requires = p.requires(m)
	man.Provides = p.provides(m)
	man.Name = p.str(m, "", "name", true)
	man.Version = p.str(m, "", "version", true)
	man.SDK = p.str(m, "", "sdk", true)
	fingerprint := p.str(m, "", "fingerprint", false)
	if p.err != nil {
		return man
	}
	if !nameRE.MatchString(man.Name) {
		p.fail("name", "%q is not a module name such as \"pricing\" or \"acme.pricing\"", man.Name)
	}
	if !versionRE.MatchString(man.Version) {
		p.fail("version", "%q is not a semantic version such as \"1.4.2\"", man.Version)
	}
	methods, ok := m["methods"].([]any)
	if !ok {
		if _, present := m["methods"]; !present {
			p.fail("", `"methods" is missing`)
		} else {
			p.fail("methods", "want an array, got %s", jsonKind(m["methods"]))
		}
		return man
	}
	seen := map[string]bool{}
	man.Methods = make([]MethodInfo, 0, len(methods))
	for i, v := range methods {
		path := "methods[" + strconv.Itoa(i) + "]"
		mi := p.method(v, path)
		if p.err != nil {
			return man
		}
		if seen[mi.Name] {
			p.fail(path, "method %q is listed twice", mi.Name)
			return man
		}
		seen[mi.Name] = true
		man.Methods = append(man.Methods, mi)
	}
	sort.Slice(man.Methods, func(i, j int) bool { return man.Methods[i].Name < man.Methods[j].Name })
	man.Fingerprint = manifestFingerprint(man)
	if fingerprint != "" && fingerprint != man.Fingerprint {
		p.fail("fingerprint", "%s does not match the manifest's methods (%s): was it edited by hand?", fingerprint, man.Fingerprint)
	}
	return man
}

// needs reads the optional "needs": distinct capability names, returned
// sorted; an empty list is none (nil).
func (p *manifestParser) needs(m map[string]any) []string {
	v, ok := m["needs"]
	if !ok {
		return nil
	}
	list, ok := v.([]any)
	if !ok {
		p.fail("needs", "want an array of strings, got %s", jsonKind(v))
		return nil
	}
	var out []string
	for i, x := range list {
		s, ok := x.(string)
		if !ok {
			p.fail("needs["+strconv.Itoa(i)+"]", "want a string, got %s", jsonKind(x))
			return nil
		}
		if !needRE.MatchString(s) {
			p.fail("needs["+strconv.Itoa(i)+"]", "%q is not a capability name (a lower-case word such as %q)", s, NeedFS)
			return nil
		}
		if containsString(out, s) {
			p.fail("needs", "%q is listed twice", s)
			return nil
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// list returns m[key] as an array of objects with the given keys; a
// missing key is none.
func (p *manifestParser) list(m map[string]any, key string, keys ...string) []map[string]any {
	v, ok := m[key]
	if !ok {
		return nil
	}
	arr, ok := v.([]any)
	if !ok {
		p.fail(key, "want an array of objects, got %s", jsonKind(v))
		return nil
	}
	out := make([]map[string]any, 0, len(arr))
	for i, x := range arr {
		o := p.object(x, key+"["+strconv.Itoa(i)+"]", keys...)
		if o == nil {
			return nil
		}
		out = append(out, o)
	}
	return out
}

// requires reads the optional "requires": each entry names a module or a
// capability, not both, with a range; no target twice.
func (p *manifestParser) requires(m map[string]any) []Requirement {
	var out []Requirement
	for i, o := range p.list(m, "requires", "module", "capability", "range") {
		path := "requires[" + strconv.Itoa(i) + "]"
		r := Requirement{
			Module:     p.str(o, path, "module", false),
			Capability: p.str(o, path, "capability", false),
			Range:      p.str(o, path, "range", true),
		}
		switch {
		case p.err != nil:
		case (r.Module == "") == (r.Capability == ""):
			p.fail(path, `give exactly one of "module" and "capability"`)
		case !nameRE.MatchString(r.Target()):
			p.fail(path, "%q is not a module or capability name such as \"geo\"", r.Target())
		case !rangeRE.MatchString(r.Range):
			p.fail(path, "%q is not a version range such as \"^1.2\"", r.Range)
		}
		for _, o := range out {
			if p.err == nil && o.Target() == r.Target() {
				p.fail(path, "%q is required twice", r.Target())
			}
		}
		if p.err != nil {
			return nil
		}
		out = append(out, r)
	}
	sortRequirements(out)
	return out
}

// provides reads the optional "provides": capabilities at versions, each
// once.
func (p *manifestParser) provides(m map[string]any) []Provided {
	var out []Provided
	for i, o := range p.list(m, "provides", "capability", "version") {
		path := "provides[" + strconv.Itoa(i) + "]"
		c := Provided{Capability: p.str(o, path, "capability", true), Version: p.str(o, path, "version", true)}
		switch {
		case p.err != nil:
		case !nameRE.MatchString(c.Capability):
			p.fail(path, "%q is not a capability name such as \"geocoding\"", c.Capability)
		case !versionRE.MatchString(c.Version):
			p.fail(path, "%q is not a semantic version such as \"1.3.0\"", c.Version)
		}
		for _, o := range out {
			if p.err == nil && o.Capability == c.Capability {
				p.fail(path, "capability %q is provided twice", c.Capability)
			}
		}
		if p.err != nil {
			return nil
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Capability < out[j].Capability })
	return out
}

func (p *manifestParser) method(v any, path string) MethodInfo {
	var mi MethodInfo
	m := p.object(v, path, "name", "doc", "params", "result", "fingerprint", "timeout")
	if m == nil {
		return mi
	}
	mi.Name = p.str(m, path, "name", true)
	mi.Doc = p.str(m, path, "doc", false)
	if mi.Timeout = p.str(m, path, "timeout", false); mi.Timeout != "" && p.err == nil {
		if d, err := time.ParseDuration(mi.Timeout); err != nil || d <= 0 {
			p.fail(join(path, "timeout"), "%q is not a positive duration such as \"250ms\"", mi.Timeout)
		}
	}
	fingerprint := p.str(m, path, "fingerprint", false)
	if p.err != nil {
		return mi
	}
	if !methodRE.MatchString(mi.Name) {
		p.fail(join(path, "name"), "%q is not a method name (letters, digits, '_', '.' and '-')", mi.Name)
		return mi
	}
	for _, side := range []struct {
		key string
		dst **Schema
	}{{"params", &mi.Params}, {"result", &mi.Result}} {
		sv, ok := m[side.key]
		if !ok {
			p.fail(path, "%q is missing", side.key)
			return mi
		}
		s := p.schema(sv, join(path, side.key), 0)
		if p.err != nil {
			return mi
		}
		if !(s.Type == TypeObject && !s.Nullable) && !s.IsDynamic() {
			p.fail(join(path, side.key), "must be an object schema, or the open schema of a dynamic method (a map of any), not %s", s)
			return mi
		}
		*side.dst = s
	}
	mi.Fingerprint = methodFingerprint(mi.Params, mi.Result)
	if fingerprint != "" && fingerprint != mi.Fingerprint {
		p.fail(join(path, "fingerprint"), "%s does not match the method's schemas (%s): was it edited by hand?", fingerprint, mi.Fingerprint)
	}
	return mi
}

var schemaKeys = []string{"type", "nullable", "items", "fields"}

func (p *manifestParser) schema(v any, path string, depth int) *Schema {
	m := p.object(v, path, schemaKeys...)
	if m == nil {
		return nil
	}
	return p.schemaFrom(m, path, depth)
}

// schemaFrom reads the schema keys of m (an object already checked for
// unknown keys).
func (p *manifestParser) schemaFrom(m map[string]any, path string, depth int) *Schema {
	if depth > MaxDepth {
		p.fail(path, "schemas nest deeper than %d levels", MaxDepth)
		return nil
	}
	s := &Schema{Type: p.str(m, path, "type", true), Nullable: p.boolean(m, path, "nullable")}
	if p.err != nil {
		return nil
	}
	items, hasItems := m["items"]
	fields, hasFields := m["fields"]
	switch {
	case s.Type == TypeArray || s.Type == TypeMap:
		if !hasItems {
			p.fail(path, "a %s schema needs \"items\"", s.Type)
			return nil
		}
		s.Items = p.schema(items, join(path, "items"), depth+1)
	case s.Type == TypeObject:
		if hasFields {
			s.Fields = p.fields(fields, join(path, "fields"), depth)
		}
	case isScalarType(s.Type) || s.Type == TypeBytes || s.Type == TypeAny:
	default:
		p.fail(join(path, "type"), "unknown type %q", s.Type)
		return nil
	}
	switch {
	case p.err != nil:
		return nil
	case hasItems && s.Items == nil:
		p.fail(path, "\"items\" is only for array and map schemas, not %s", s.Type)
	case hasFields && s.Type != TypeObject:
		p.fail(path, "\"fields\" is only for object schemas, not %s", s.Type)
	case s.Nullable && s.Type != TypeObject:
		p.fail(path, "only an object can be nullable, not %s", s.Type)
	}
	if p.err != nil {
		return nil
	}
	return s
}

func (p *manifestParser) fields(v any, path string, depth int) []Field {
	list, ok := v.([]any)
	if !ok {
		p.fail(path, "want an array, got %s", jsonKind(v))
		return nil
	}
	if len(list) > maxFields {
		p.fail(path, "more than %d fields", maxFields)
		return nil
	}
	fields := make([]Field, 0, len(list))
	names := map[string]bool{}
	ids := map[int]bool{}
	for i, fv := range list {
		fpath := path + "[" + strconv.Itoa(i) + "]"
		m := p.object(fv, fpath, append([]string{"name", "id", "required", "default", "aliases"}, schemaKeys...)...)
		if m == nil {
			return nil
		}
		f := Field{Name: p.str(m, fpath, "name", true), Required: p.boolean(m, fpath, "required")}
		f.ID = p.id(m, fpath)
		if p.err != nil {
			return nil
		}
		s := p.schemaFrom(m, fpath, depth+1)
		if p.err != nil {
			return nil
		}
		f.Schema = *s
		if av, ok := m["aliases"]; ok {
			as, ok := av.([]any)
			if !ok {
				p.fail(join(fpath, "aliases"), "want an array of strings, got %s", jsonKind(av))
				return nil
			}
			for _, a := range as {
				s, ok := a.(string)
				if !ok {
					p.fail(join(fpath, "aliases"), "want an array of strings, got %s in it", jsonKind(a))
					return nil
				}
				f.Aliases = append(f.Aliases, s)
			}
			if len(f.Aliases) > 254 {
				p.fail(join(fpath, "aliases"), "more than 254 aliases")
				return nil
			}
		}
		for _, n := range append([]string{f.Name}, f.Aliases...) {
			if !wireNameRE.MatchString(n) {
				p.fail(fpath, "%q is not a field name (a letter or '_', then letters, digits, '_' and '-')", n)
				return nil
			}
			if names[n] {
				p.fail(fpath, "name %q is used twice in the object", n)
				return nil
			}
			names[n] = true
		}
		if ids[f.ID] {
			p.fail(fpath, "id %d is used twice in the object", f.ID)
			return nil
		}
		ids[f.ID] = true
		if dv, ok := m["default"]; ok {
			if f.Required {
				p.fail(fpath, "a required field cannot have a default")
				return nil
			}
			f.Default = p.defaultValue(dv, f.Type, join(fpath, "default"))
			if p.err != nil {
				return nil
			}
		}
		fields = append(fields, f)
	}
	if len(fields) == 0 {
		return nil // as a struct without fields has it
	}
	sortFields(fields)
	return fields
}

func (p *manifestParser) id(m map[string]any, path string) int {
	v, ok := m["id"]
	if !ok {
		p.fail(path, `"id" is missing`)
		return 0
	}
	n, ok := v.(json.Number)
	if !ok {
		p.fail(join(path, "id"), "want an integer, got %s", jsonKind(v))
		return 0
	}
	id, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || id < 1 || id > math.MaxInt32 {
		p.fail(join(path, "id"), "%s is not an integer from 1 to %d", n, math.MaxInt32)
		return 0
	}
	return int(id)
}

// defaultValue converts a JSON default for a field of type typ.
func (p *manifestParser) defaultValue(v any, typ, path string) any {
	var out any
	switch {
	case typ == TypeString:
		s, ok := v.(string)
		if !ok {
			p.fail(path, "want a string for a string field, got %s", jsonKind(v))
			return nil
		}
		out = s
	case typ == TypeBool:
		b, ok := v.(bool)
		if !ok {
			p.fail(path, "want a bool for a bool field, got %s", jsonKind(v))
			return nil
		}
		out = b
	case isFloatType(typ):
		n, ok := v.(json.Number)
		if !ok {
			p.fail(path, "want a number for a %s field, got %s", typ, jsonKind(v))
			return nil
		}
		f, err := strconv.ParseFloat(string(n), 64)
		if err != nil || math.IsInf(f, 0) {
			p.fail(path, "%s is not a finite %s", n, typ)
			return nil
		}
		if typ == TypeFloat32 && float64(float32(f)) != f {
			p.fail(path, "%s is not a float32 value", n)
			return nil
		}
		out = f
	default:
		min, max, ok := intRange(typ)
		if !ok {
			p.fail(path, "a default is only allowed on bool, integer, float and string fields, not %s", typ)
			return nil
		}
		n, isNum := v.(json.Number)
		if !isNum {
			p.fail(path, "want an integer for a %s field, got %s", typ, jsonKind(v))
			return nil
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || i < min || i > max {
			p.fail(path, "%s is not a %s (an integer from %d to %d)", n, typ, min, max)
			return nil
		}
		out = i
	}
	return normalizeDefault(out)
}
