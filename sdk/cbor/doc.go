// Package cbor encodes and decodes hotmod's value model as CBOR (RFC 8949).
//
// It is the codec the wasm and process transports carry params and results
// with, so it is written by hand for exactly the value model and nothing
// else: no reflection, no unsafe, no dependencies, and it builds with Go 1.22
// so that module authors on older toolchains (and Go wasm guests) share it.
//
// # The mapping
//
//	value model       CBOR
//	nil               null (simple value 22); undefined (23) also decodes as nil
//	bool              false, true
//	int64             major types 0 and 1; decoding refuses what does not fit in int64
//	float64           major type 7 floats; half, single and double all decode as float64
//	string            text string (major 3), valid UTF-8 both ways
//	[]byte            byte string (major 2)
//	[]any             array (major 4)
//	map[string]any    map (major 5) with text-string keys, no duplicates
//
// Marshal also accepts Go's other integer kinds (int, int8 … uint64) and
// float32 when the conversion is lossless; they decode as int64 and float64.
// A nil map[string]any, []any or []byte encodes as an empty map, array or
// byte string: only an untyped nil is null. Anything else is an error that
// names the path to the offending value:
//
//	cbor: value.items[2]: time.Time is not in the value model
//
// # Decisions
//
// Floats: every encoder here (Marshal, MarshalDeterministic, AppendFloat)
// writes the shortest of half, single and double precision that holds the
// value exactly. That is RFC 8949's preferred serialization, which the
// deterministic mode needs anyway, so there is one rule for both modes. It
// costs about 2 ns per float over always writing a double (BenchmarkAppendFloat:
// 5.7 against 3.4 ns) and makes common values (0, 1.5, -4) 3 bytes instead
// of 9 (5.8 bytes a float on that benchmark's mix, against 9). A float is never turned into an integer, and an integer never
// into a float. Every NaN encodes as the canonical half-precision quiet NaN
// f9 7e00: NaN payloads and signs do not survive, which the value model does
// not promise anyway, and it keeps Marshal deterministic for NaN too.
// Infinities and -0.0 survive.
//
// Indefinite lengths: accepted on decode (arrays, maps, byte and text
// strings made of definite-length chunks), so that streaming encoders in
// other languages work; never written by the encoders. The streaming Decoder
// reports them as a header of -1, then the caller reads items until AtBreak
// and consumes the break with ReadBreak.
//
// Undefined (simple value 23) decodes as nil, as JavaScript encoders emit it
// for missing values; it is never written. Other simple values (0–19, 24–255)
// are errors.
//
// Tags: the self-describe tag 55799 is accepted and ignored wherever an item
// may start; every other tag is an error that names it ("tag 1 (epoch
// date/time) is not in the value model"). Bignums are therefore refused, as
// are integers outside int64: the value model has no place for them.
//
// Non-minimal heads (a small integer or length written in more bytes than it
// needs) are accepted on decode; the encoders always write the shortest form.
//
// # Hostile input
//
// Decoding never panics and never allocates in proportion to a declared
// length it has not checked: a length or count is compared with the input
// that remains and with Limits before anything is allocated, so a 9-byte head
// that claims 2^62 elements fails at once. Limits bound the input size, the
// nesting depth, the elements of one array or map, and the data items of the
// whole input. Duplicate map keys are an error.
//
// # Strings and memory
//
// For inputs up to 16 KiB, the decoder copies the input into one string the
// first time it decodes a text string, and every text string it returns
// (map keys included) is a substring of that copy: one allocation for all the
// strings of a message instead of one each, which halves the allocations of
// decoding a typical map. The price is that a string kept from such a message
// keeps the copy alive (at most 16 KiB): strings.Clone one that is kept for
// long. Larger inputs get a copy per string. Byte strings are always copied,
// except by ReadStringBytes, which aliases the input.
package cbor
