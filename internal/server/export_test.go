package server

// EncodeResult exposes encodeResult to the external tests; it panics on an
// error, which the callers rule out.
func EncodeResult(m map[string]any) []byte {
	b, err := encodeResult(m)
	if err != nil {
		panic(err)
	}
	return b
}
