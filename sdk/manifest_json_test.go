package sdk

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"
)

type jsonDefaults struct {
	F    float64 `hotmod:"f,id=1,default=0.5"`
	Tiny float64 `hotmod:"tiny,id=2,default=1e-9"`
	Big  float64 `hotmod:"big,id=3,default=2e21"`
	I    int64   `hotmod:"i,id=4,default=-7"`
	B    bool    `hotmod:"b,id=5,default=true"`
	S    string  `hotmod:"s,id=6,default=\"<a & b>\""`
	P    *line   `hotmod:"p,id=7"`
}

// TestManifestJSON: the guest's hand-written manifest JSON is json.Marshal's,
// byte for byte.
func TestManifestJSON(t *testing.T) {
	noop := func(context.Context, map[string]any) (map[string]any, error) { return nil, nil }
	modules := []*Module{
		adder(),
		New("acme.shop", "1.2.3-rc.1+b5").
			Method(Func("quote", func(context.Context, order) (jsonDefaults, error) { return jsonDefaults{}, nil },
				Doc("prices <an> order & more \"quoted\" \u2028 é \x01 \t"), Timeout(250*time.Millisecond))).
			Method(Func("flat", func(context.Context, flatOrder) (ab, error) { return ab{}, nil })).
			Handle("dyn", noop).
			Needs(NeedClock, NeedFS).
			Requires("geo", "^1.2").
			RequiresCapability("payments", ">=1.0, <2").
			Provides("pricing", "1.4.0"),
	}
	for _, m := range modules {
		if err := m.Validate(); err != nil {
			t.Fatal(err)
		}
		man := m.Manifest()
		want, err := json.Marshal(man)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendManifestJSON(nil, man)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: the manifest's JSON differs from json.Marshal's:\n got: %s\nwant: %s", m.Name(), got, want)
		}
	}
	var empty Manifest
	want, _ := json.Marshal(empty)
	if got, _ := appendManifestJSON(nil, empty); string(got) != string(want) {
		t.Errorf("empty manifest:\n got: %s\nwant: %s", got, want)
	}
}

// FuzzJSONScalars: strings and float defaults as json.Marshal writes them.
func FuzzJSONScalars(f *testing.F) {
	for _, s := range []string{"", "a", "<>&", "\x00\x1f\x7f", "\u2028\u2029", "é\xff\xc3", "\"\\/"} {
		f.Add(s, 0.5)
	}
	f.Add("", 1e-7)
	f.Add("", 1e21)
	f.Add("", math.MaxFloat64)
	f.Add("", -5e-324)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); string(got) != string(want) {
			t.Fatalf("%q: got %s, want %s", s, got, want)
		}
		want, err := json.Marshal(x)
		got, gerr := appendJSONDefault(nil, x)
		if (err == nil) != (gerr == nil) || err == nil && string(got) != string(want) {
			t.Fatalf("%v: got %s (%v), want %s (%v)", x, got, gerr, want, err)
		}
	})
}
