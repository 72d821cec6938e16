package sdk

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func richModule() *Module {
	return New("acme.shop", "2.3.4-rc.1+build.5").
		Method(Func("order", func(context.Context, order) (order, error) { return order{}, nil }, Doc("takes an order"))).
		Method(Func("add", add, Timeout(250*time.Millisecond))).
		Handle("free", addDynamic, Doc("anything goes")).
		Requires("acme.stock", "^2.1").RequiresCapability("payments", ">=1.0.0 <3").
		Provides("ordering", "1.4.0")
}

func TestParseManifestRoundTrip(t *testing.T) {
	for _, m := range []*Module{richModule(), adder()} {
		want := m.Manifest()
		data, err := json.MarshalIndent(want, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseManifest(data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			a, _ := json.Marshal(got)
			t.Errorf("round trip changed the manifest:\ngot  %s\nwant %s", a, data)
		}
	}
}

// manifestJSON is a small valid manifest for the error cases to break.
const manifestJSON = `{
  "name": "pricing", "version": "1.1.0", "sdk": "0.1.0",
  "methods": [{
    "name": "quote", "doc": "prices an order",
    "params": {"type": "object", "fields": [
      {"name": "sku", "id": 1, "required": true, "type": "string"},
      {"name": "coupon", "id": 3, "default": "NONE", "aliases": ["code"], "type": "string"},
      {"name": "lines", "id": 4, "type": "array", "items": {"type": "object", "fields": [
        {"name": "qty", "id": 1, "type": "int32", "default": 1}]}}
    ]},
    "result": {"type": "map", "items": {"type": "any"}}
  }]
}`

func TestParseManifest(t *testing.T) {
	man, err := ParseManifest([]byte(manifestJSON))
	if err != nil {
		t.Fatal(err)
	}
	if s := man.Methods[0].Params.String(); s != `{sku!: string, coupon: string = "NONE" (alias code), lines: []{qty: int32 = 1}}` {
		t.Errorf("params: %s", s)
	}
	if man.Fingerprint == "" || man.Methods[0].Fingerprint == "" {
		t.Error("fingerprints are computed when left out")
	}
	if d := man.Methods[0].Params.Fields[2].Items.Fields[0].Default; d != int64(1) {
		t.Errorf("an integer default is an int64, got %T", d)
	}

	edit := func(old, new string) string {
		if !strings.Contains(manifestJSON, old) {
			t.Fatalf("%q is not in the manifest", old)
		}
		return strings.Replace(manifestJSON, old, new, 1)
	}
	cases := []struct {
		name, data, err string
	}{
		{"not JSON", "{", "manifest: unexpected end of input"},
		{"not an object", "[]", "manifest: want an object, got an array"},
		{"trailing data", manifestJSON + "{}", "manifest: unexpected data after the manifest object"},
		{"invalid UTF-8", edit("prices", "pri\xffces"), "manifest: the input is not valid UTF-8"},
		{"unknown key", edit(`"sdk"`, `"sdkk": 1, "sdk"`), `manifest: unknown key "sdkk"`},
		{"keys are case-sensitive", edit(`"name": "pricing"`, `"Name": "pricing"`), `manifest: unknown key "Name"`},
		{"unknown key in a field", edit(`"required": true`, `"required": true, "nulable": true`),
			`manifest: methods[0].params.fields[0]: unknown key "nulable"`},
		{"key twice", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "sdk": "0.2.0"`), `manifest: key "sdk" is given twice`},
		{"missing name", edit(`"name": "pricing", `, ""), `manifest: "name" is missing`},
		{"bad name", edit(`"pricing"`, `"Pricing"`), `manifest: name: "Pricing" is not a module name`},
		{"bad version", edit(`"1.1.0"`, `"1.1"`), `manifest: version: "1.1" is not a semantic version`},
		{"methods not an array", edit(`"methods": [{`, `"methods": {"x": [{`) + "}", `manifest: methods: want an array, got an object`},
		{"method twice", strings.Replace(manifestJSON, `"methods": [{`, `"methods": [{"name": "quote", "params": {"type": "object"}, "result": {"type": "object"}}, {`, 1),
			`manifest: methods[1]: method "quote" is listed twice`},
		{"missing params", edit(`"params": {"type": "object", "fields": [`, `"paramz": {"type": "object", "fields": [`), `unknown key "paramz"`},
		{"params not an object schema", edit(`"result": {"type": "map", "items": {"type": "any"}}`, `"result": {"type": "string"}`),
			`manifest: methods[0].result: must be an object schema, or the open schema of a dynamic method (a map of any), not string`},
		{"unknown type", edit(`"type": "int32"`, `"type": "int31"`), `fields[0].type: unknown type "int31"`},
		{"array without items", edit(`"type": "array", "items": {"type": "object", "fields": [
        {"name": "qty", "id": 1, "type": "int32", "default": 1}]}`, `"type": "array"`), `a array schema needs "items"`},
		{"items on a string", edit(`"id": 1, "required": true, "type": "string"`, `"id": 1, "required": true, "type": "string", "items": {"type": "any"}`),
			`"items" is only for array and map schemas, not string`},
		{"fields on a map", edit(`"result": {"type": "map", "items": {"type": "any"}}`, `"result": {"type": "map", "items": {"type": "any"}, "fields": []}`),
			`"fields" is only for object schemas, not map`},
		{"nullable string", edit(`"required": true, "type": "string"`, `"nullable": true, "type": "string"`), `only an object can be nullable, not string`},
		{"id missing", edit(`"name": "sku", "id": 1,`, `"name": "sku",`), `fields[0]: "id" is missing`},
		{"id not an integer", edit(`"name": "sku", "id": 1,`, `"name": "sku", "id": 1.0,`), `fields[0].id: 1.0 is not an integer from 1 to 2147483647`},
		{"id twice", edit(`"name": "coupon", "id": 3`, `"name": "coupon", "id": 1`), `fields[1]: id 1 is used twice in the object`},
		{"name twice", edit(`"aliases": ["code"]`, `"aliases": ["sku"]`), `fields[1]: name "sku" is used twice in the object`},
		{"bad alias", edit(`"aliases": ["code"]`, `"aliases": ["co de"]`), `fields[1]: "co de" is not a field name`},
		{"aliases not strings", edit(`"aliases": ["code"]`, `"aliases": [1]`), `want an array of strings, got a number in it`},
		{"default on required", edit(`"required": true, "type": "string"`, `"required": true, "default": "x", "type": "string"`),
			`fields[0]: a required field cannot have a default`},
		{"default of the wrong type", edit(`"default": "NONE"`, `"default": 1`), `default: want a string for a string field, got a number`},
		{"integer default not an integer", edit(`"default": 1}`, `"default": 1.5}`), `default: 1.5 is not a int32`},
		{"integer default out of range", edit(`"default": 1}`, `"default": 2147483648}`), `default: 2147483648 is not a int32`},
		{"float32 default not a float32", edit(`"type": "int32", "default": 1}`, `"type": "float32", "default": 0.1}`), `default: 0.1 is not a float32 value`},
		{"default on bytes", edit(`"type": "int32", "default": 1}`, `"type": "bytes", "default": 1}`), `a default is only allowed on bool, integer, float and string fields, not bytes`},
		{"method fingerprint edited", edit(`"name": "quote",`, `"name": "quote", "fingerprint": "00",`),
			`manifest: methods[0].fingerprint: 00 does not match the method's schemas`},
		{"manifest fingerprint edited", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "fingerprint": "00"`),
			`manifest: fingerprint: 00 does not match the manifest's methods`},
		{"requires both", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "requires": [{"module": "geo", "capability": "geo", "range": "^1"}]`),
			`manifest: requires[0]: give exactly one of "module" and "capability"`},
		{"requires no range", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "requires": [{"module": "geo"}]`), `manifest: requires[0]: "range" is missing`},
		{"requires bad range", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "requires": [{"module": "geo", "range": "#1"}]`),
			`manifest: requires[0]: "#1" is not a version range`},
		{"requires twice", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "requires": [{"module": "geo", "range": "^1"}, {"capability": "geo", "range": "^2"}]`),
			`manifest: requires[1]: "geo" is required twice`},
		{"provides bad version", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "provides": [{"capability": "geo", "version": "1"}]`),
			`manifest: provides[0]: "1" is not a semantic version`},
		{"provides not a list", edit(`"sdk": "0.1.0"`, `"sdk": "0.1.0", "provides": {"capability": "geo"}`),
			`manifest: provides: want an array of objects, got an object`},
		{"bad timeout", edit(`"doc": "prices an order"`, `"doc": "prices an order", "timeout": "-1s"`),
			`manifest: methods[0].timeout: "-1s" is not a positive duration`},
		{"too deep", strings.Repeat(`{"type": "array", "items": `, 70), "manifest: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseManifest([]byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v\nwant it to contain %s", err, tc.err)
			}
		})
	}

	// A zero default means no default.
	man, err = ParseManifest([]byte(strings.Replace(manifestJSON, `"default": 1}`, `"default": 0}`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if d := man.Methods[0].Params.Fields[2].Items.Fields[0].Default; d != nil {
		t.Errorf("a zero default is kept: %v", d)
	}
}

// FuzzParseManifest checks that ParseManifest never panics, and that what it
// accepts survives a round trip through its JSON form unchanged.
func FuzzParseManifest(f *testing.F) {
	f.Add([]byte(manifestJSON))
	for _, m := range []*Module{richModule(), adder()} {
		data, _ := json.Marshal(m.Manifest())
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		man, err := ParseManifest(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(man)
		if err != nil {
			t.Fatalf("a parsed manifest does not marshal: %v", err)
		}
		back, err := ParseManifest(again)
		if err != nil {
			t.Fatalf("a parsed manifest does not parse again: %v\n%s", err, again)
		}
		if !reflect.DeepEqual(back, man) {
			t.Fatalf("round trip changed the manifest:\n%+v\n%+v", man, back)
		}
	})
}
