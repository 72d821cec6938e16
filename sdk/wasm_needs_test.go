package sdk

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Needs declares capabilities for sandboxing transports (the wasm host
// decides them against its grants); they travel in the manifest.
func TestNeeds(t *testing.T) {
	h := func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }
	m := New("reader", "1.0.0").Needs(NeedFS, NeedClock, NeedFS).Handle("read", h)
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	man := m.Manifest()
	if !reflect.DeepEqual(man.Needs, []string{"clock", "fs"}) {
		t.Errorf("needs = %v, want sorted and without duplicates", man.Needs)
	}
	plain := New("reader", "1.0.0").Handle("read", h).Manifest()
	if plain.Needs != nil || man.Fingerprint != plain.Fingerprint {
		t.Errorf("needs are not part of the contract: fingerprints %s and %s", man.Fingerprint, plain.Fingerprint)
	}
	data, err := json.Marshal(man)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseManifest(data)
	if err != nil || !reflect.DeepEqual(back, man) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
	if data, _ := json.Marshal(plain); strings.Contains(string(data), "needs") {
		t.Errorf("a manifest without needs says so: %s", data)
	}
	if err := New("x", "1.0.0").Needs("File System").Handle("a", h).Validate(); err == nil || !strings.Contains(err.Error(), `Needs("File System")`) {
		t.Errorf("a malformed capability: %v", err)
	}
}

func TestParseManifestNeeds(t *testing.T) {
	base := `{"name": "reader", "version": "1.0.0", "sdk": "0.2.0", "methods": [
	  {"name": "read", "params": {"type": "map", "items": {"type": "any"}}, "result": {"type": "map", "items": {"type": "any"}}}]`
	for _, tc := range []struct{ needs, err string }{
		{`["fs", "clock"]`, ""},
		{`[]`, ""},
		{`"fs"`, "needs: want an array of strings, got a string"},
		{`["fs", "fs"]`, `needs: "fs" is listed twice`},
		{`[1]`, "needs[0]: want a string, got a number"},
		{`["Disk!"]`, `needs[0]: "Disk!" is not a capability name`},
	} {
		man, err := ParseManifest([]byte(base + `, "needs": ` + tc.needs + `}`))
		if tc.err == "" {
			if err != nil {
				t.Errorf("%s: %v", tc.needs, err)
			} else if tc.needs == "[]" && man.Needs != nil || tc.needs != "[]" && !reflect.DeepEqual(man.Needs, []string{"clock", "fs"}) {
				t.Errorf("%s: needs = %#v", tc.needs, man.Needs)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%s: got %v, want …%s…", tc.needs, err, tc.err)
		}
	}
}
