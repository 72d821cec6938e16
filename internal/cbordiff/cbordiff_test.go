package cbordiff

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/hotmod/hotmod/sdk/cbor"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// agreed are inputs both decoders accept, to the same value: RFC 8949
// Appendix A's examples in the value model, and the corners of the mapping.
var agreed = []string{
	// integers, including non-minimal heads and the ends of int64
	"00", "17", "1818", "1903e8", "1a000f4240", "1b000000e8d4a51000", "20", "3863", "3903e7",
	"1b7fffffffffffffff", "3b7fffffffffffffff", "1b0000000000000001", "3800",
	// floats of every width, -0, infinities and NaNs with payloads
	"f90000", "f98000", "f93c00", "fb3ff199999999999a", "f93e00", "f97bff", "fa47c35000", "fa7f7fffff",
	"fb7e37e43c8800759c", "f90001", "f90400", "f9c400", "fbc010666666666666", "f97c00", "f97e00", "f9fc00",
	"fa7f800000", "fa7fc00000", "faff800000", "fb7ff0000000000000", "fb7ff8000000000000", "fbfff0000000000000",
	"f97e01", "fa7fc00001", "fb7ff8000000000001", "fb8000000000000000", "fa00000001",
	// simple values of the model; undefined decodes as nil in both
	"f4", "f5", "f6", "f7", "a16161f7",
	// strings
	"40", "4401020304", "60", "6161", "6449455446", "62225c", "62c3bc", "63e6b0b4", "64f0908591", "63efbfbd",
	// arrays and maps, definite and indefinite
	"80", "83010203", "8301820203820405", "98190102030405060708090a0b0c0d0e0f101112131415161718181819",
	"a0", "a26161016162820203", "826161a161626163", "a56161614161626142616361436164614461656145",
	"5f42010243030405ff", "7f657374726561646d696e67ff", "9fff", "9f018202039f0405ffff", "9f01820203820405ff",
	"83018202039f0405ff", "83019f0203ff820405", "bf61610161629f0203ffff", "826161bf61626163ff",
	"bf6346756ef563416d7421ff", "5fff", "7fff", "bfff", "7f6060ff",
	// the self-describe tag, which both skip
	"d9d9f7a0", "d9d9f7d9d9f701", "82d9d9f701a1d9d9f76161d9d9f702",
}

func TestAgreedInputs(t *testing.T) {
	for _, h := range agreed {
		data := unhex(t, h)
		ours, err := cbor.Unmarshal(data)
		if err != nil {
			t.Errorf("sdk/cbor refuses %s: %v", h, err)
			continue
		}
		theirs, err := Decode(data)
		if err != nil {
			t.Errorf("fxamacker refuses %s: %v", h, err)
			continue
		}
		if !Equal(ours, theirs) {
			t.Errorf("%s: sdk/cbor %#v, fxamacker %#v", h, ours, theirs)
		}
	}
}

// TestRefusedInputs lists what sdk/cbor refuses, and what fxamacker (as
// DecMode configures it) does with it. Where fxamacker accepts, the reason is
// a documented difference: it has Go types for values the model has not
// (fxAccepts says which), or it is more lenient (fxQuirk).
func TestRefusedInputs(t *testing.T) {
	const (
		fxRefuses = iota
		fxAccepts // fxamacker decodes to a type outside the value model
		fxQuirk   // fxamacker decodes to a value-model value; see the note
	)
	tests := []struct {
		hex, ours string
		fx        int
		note      string
	}{
		{"1bffffffffffffffff", "integer 18446744073709551615 does not fit in int64", fxRefuses, ""},
		{"3bffffffffffffffff", "integer -18446744073709551616 does not fit in int64", fxRefuses, ""},
		{"c249010000000000000000", "tag 2 (unsigned bignum)", fxAccepts, "big.Int"},
		{"c11a514b67b0", "tag 1 (epoch date/time)", fxAccepts, "time.Time"},
		{"c074323031332d30332d32315432303a30343a30305a", "tag 0", fxAccepts, "time.Time"},
		{"d82076687474703a2f2f7777772e6578616d706c652e636f6d", "tag 32 (URI)", fxAccepts, "cbor.Tag"},
		{"c0a0", "tag 0", fxRefuses, ""},
		{"f0", "simple value 16", fxAccepts, "cbor.SimpleValue"},
		{"f8ff", "simple value 255", fxAccepts, "cbor.SimpleValue"},
		{"f818", "simple value 24 must be encoded in one byte", fxRefuses, ""},
		{"a201020304", "map key is an unsigned integer", fxRefuses, ""},
		{"a1410001", "map key is a byte string", fxRefuses, ""},
		{"a18001", "map key is an array", fxRefuses, ""},
		{"a1f601", "map key is null", fxQuirk, `fxamacker decodes a null key as "" into map[string]any`},
		{"a1f701", "map key is undefined", fxQuirk, `likewise for undefined`},
		{"a1c9f630", "tag 9 is not in the value model", fxQuirk, `a tagged null key: fxamacker drops the tag and decodes "" again`},
		{"a2616101616102", "duplicate map key", fxRefuses, ""},
		{"bf616101616102ff", "duplicate map key", fxRefuses, ""},
		{"62c328", "not valid UTF-8", fxRefuses, ""},
		{"63eda080", "not valid UTF-8", fxRefuses, ""},
		{"7f61c361bcff", "not valid UTF-8", fxRefuses, ""},
		{"0000", "trailing bytes", fxRefuses, ""},
		{"ff", "unexpected break", fxRefuses, ""},
		{"9fd9d9f7ffff", "unexpected break", fxRefuses, ""},
		{"9f01", "unexpected end of input", fxRefuses, ""},
		{"d9d9f7", "unexpected end of input", fxRefuses, ""},
		{"5f6161ff", "chunk of an indefinite-length byte string", fxRefuses, ""},
		{"7f7f6161ffff", "want a definite-length one", fxRefuses, ""},
		{"1c", "reserved additional information 28", fxRefuses, ""},
		{"1f", "additional information 31", fxRefuses, ""},
		{"9b4000000000000000", "exceeds the limit", fxRefuses, ""},
		{strings.Repeat("81", 65) + "00", "nested deeper than 64 levels", fxAccepts, "MaxNestedLevels is set above ours on purpose"},
	}
	for _, tc := range tests {
		data := unhex(t, tc.hex)
		_, err := cbor.Unmarshal(data)
		if err == nil || !strings.Contains(err.Error(), tc.ours) {
			t.Errorf("sdk/cbor on %s: %v, want %q", tc.hex, err, tc.ours)
		}
		var raw any
		ferr := DecMode.Unmarshal(data, &raw)
		_, nerr := Normalize(raw)
		switch tc.fx {
		case fxRefuses:
			if ferr == nil {
				t.Errorf("fxamacker accepts %s: %#v", tc.hex, raw)
			}
		case fxAccepts:
			if ferr != nil {
				t.Errorf("fxamacker refuses %s: %v", tc.hex, ferr)
			} else if nerr == nil && !strings.Contains(tc.note, "MaxNestedLevels") {
				t.Errorf("fxamacker decodes %s to a value-model value %#v", tc.hex, raw)
			}
		case fxQuirk:
			if ferr != nil || nerr != nil {
				t.Errorf("fxamacker on %s: %v, %v (the quirk is gone?)", tc.hex, ferr, nerr)
			}
		}
	}
}

// values are value-model values for the encoding checks.
func values() []any {
	return []any{
		nil, true, false, int64(0), int64(23), int64(24), int64(-25), int64(math.MaxInt64), int64(math.MinInt64),
		0.0, math.Copysign(0, -1), 1.0, 1.5, 0.1, 65504.0, 65505.0, 100000.0, 1e300, 5e-324, math.Inf(1),
		math.Inf(-1), math.NaN(), float64(math.MaxFloat32), 5.960464477539063e-8,
		"", "a", "héllo 世界", strings.Repeat("z", 300), []byte{}, []byte{1, 2, 3},
		[]any{}, []any{int64(1), "two", 3.0, nil, []byte("four")},
		map[string]any{}, smallPayload(), mediumPayload(), largePayload(),
		map[string]any{"aa": 1, "b": 2, "": 3, strings.Repeat("k", 24): 4, strings.Repeat("j", 23): 5, "é": 6},
		map[string]any{"nil slices": []any(nil), "nil map": map[string]any(nil), "nil bytes": []byte(nil)},
	}
}

// TestEncodeAgreement: what sdk/cbor encodes, fxamacker decodes to the same
// value; what fxamacker encodes (both its default and deterministic modes),
// sdk/cbor decodes to the same value; and both deterministic encodings are
// byte for byte the same.
func TestEncodeAgreement(t *testing.T) {
	for _, v := range values() {
		checkEncodings(t, v)
	}
}

func checkEncodings(t *testing.T, v any) {
	t.Helper()
	ours, err := cbor.Marshal(v)
	if err != nil {
		t.Fatalf("cbor.Marshal(%v): %v", v, err)
	}
	back, err := Decode(ours)
	if err != nil || !Equal(back, toModel(v, false)) {
		t.Fatalf("fxamacker decodes our %x as %#v, %v; want %#v", ours, back, err, v)
	}
	oursDet, err := cbor.MarshalDeterministic(v)
	if err != nil {
		t.Fatalf("cbor.MarshalDeterministic: %v", err)
	}
	theirsDet, err := DetEncMode.Marshal(v)
	if err != nil {
		t.Fatalf("fxamacker core deterministic Marshal: %v", err)
	}
	if !bytes.Equal(oursDet, theirsDet) {
		t.Fatalf("deterministic encodings of %v differ:\n sdk/cbor  %x\nfxamacker %x", v, oursDet, theirsDet)
	}
	theirs, err := EncMode.Marshal(v)
	if err != nil {
		t.Fatalf("fxamacker Marshal: %v", err)
	}
	// fxamacker's default mode writes nil slices and maps as null, where
	// sdk/cbor writes empty ones; so null is what comes back.
	for _, tc := range []struct {
		enc  []byte
		want any
	}{{theirs, toModel(v, true)}, {theirsDet, toModel(v, false)}} {
		got, err := cbor.Unmarshal(tc.enc)
		if err != nil || !Equal(got, tc.want) {
			t.Fatalf("sdk/cbor decodes fxamacker's %x as %#v, %v; want %#v", tc.enc, got, err, tc.want)
		}
	}
}

// toModel turns the Go kinds Marshal accepts into the ones decoding gives
// (int → int64), so that Equal can compare them; with nilAsNull, nil slices
// and maps become null.
func toModel(v any, nilAsNull bool) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case []byte:
		if x == nil && nilAsNull {
			return nil
		}
	case []any:
		if x == nil && nilAsNull {
			return nil
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = toModel(e, nilAsNull)
		}
		return out
	case map[string]any:
		if x == nil && nilAsNull {
			return nil
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = toModel(e, nilAsNull)
		}
		return out
	}
	return v
}

// FuzzDifferential: whatever sdk/cbor accepts, fxamacker decodes to the same
// value, and the value's encodings agree as in TestEncodeAgreement. What
// sdk/cbor refuses and fxamacker accepts must be one of the documented
// differences (see TestRefusedInputs).
func FuzzDifferential(f *testing.F) {
	for _, h := range agreed {
		f.Add(unhex(f, h))
	}
	for _, v := range values()[:30] {
		b, _ := cbor.Marshal(v)
		f.Add(b)
	}
	f.Add(unhex(f, "a1f601"))
	f.Add(unhex(f, "c11a514b67b0"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ours, oerr := cbor.Unmarshal(data)
		var raw any
		ferr := DecMode.Unmarshal(data, &raw)
		if oerr != nil {
			if ferr != nil {
				return
			}
			if _, nerr := Normalize(raw); nerr != nil {
				return // a tag or simple value: outside the model, refused by us
			}
			msg := oerr.Error()
			// Tags and simple values fxamacker may turn into value-model
			// values (a tagged null key becomes ""); the rest is in
			// TestRefusedInputs.
			for _, known := range []string{"is not in the value model", "map key is null", "map key is undefined", "nested deeper than"} {
				if strings.Contains(msg, known) {
					return
				}
			}
			t.Fatalf("sdk/cbor refuses %x (%v); fxamacker decodes %#v", data, oerr, raw)
		}
		if ferr != nil {
			t.Fatalf("sdk/cbor decodes %x as %#v; fxamacker refuses it: %v", data, ours, ferr)
		}
		theirs, err := Normalize(raw)
		if err != nil || !Equal(ours, theirs) {
			t.Fatalf("%x: sdk/cbor %s; fxamacker %#v (%v)", data, show(ours), raw, err)
		}
		checkEncodings(t, ours)
	})
}

func show(v any) string { return fmt.Sprintf("%#v", v) }
