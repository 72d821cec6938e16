package sdk

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// Fingerprints: see Manifest.Fingerprint and MethodInfo.Fingerprint.
//
// Why CBOR and not canonical JSON: the core deterministic encoding is
// specified to the byte by RFC 8949 (shortest heads, shortest exact floats,
// keys sorted by their encoding), keeps int64s exact and apart from floats,
// and is the codec the byte transports already carry, so any language with a
// CBOR library can recompute a fingerprint. Canonical JSON (RFC 8785) writes
// every number as a double, so an int64 default above 2^53 would hash as
// another value, and Go's encoding/json is not that canonical form anyway.
//
// canonical is the CBOR core deterministic encoding (RFC 8949 §4.2.1).
func canonical(v any) []byte {
	b, err := cbor.MarshalDeterministic(v)
	if err != nil {
		// The canonical forms are built here from strings, int64s, float64s,
		// bools, []any and map[string]any: always in the value model.
		panic("sdk: canonical form outside the value model: " + err.Error())
	}
	return b
}

func hashHex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func methodFingerprint(params, result *Schema) string {
	return hashHex(canonical(map[string]any{"params": params.canonical(), "result": result.canonical()}))
}

func manifestFingerprint(m Manifest) string {
	methods := make(map[string]any, len(m.Methods))
	for _, mi := range m.Methods {
		methods[mi.Name] = methodFingerprint(mi.Params, mi.Result)
	}
	return hashHex(canonical(map[string]any{"name": m.Name, "methods": methods}))
}
