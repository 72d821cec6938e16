package cbor

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// Marshal encodes a value-model value (see the package documentation). Map
// entries come in Go's map order; use MarshalDeterministic for bytes that
// depend only on the value.
func Marshal(v any) ([]byte, error) {
	return marshal(v, false)
}

// MarshalDeterministic encodes v in RFC 8949 §4.2.1 core deterministic
// encoding: shortest heads, shortest exact floats, definite lengths, and map
// keys sorted by their encoded bytes (shorter keys first, then bytewise).
// Equal values give equal bytes, so the result can be hashed or compared.
func MarshalDeterministic(v any) ([]byte, error) {
	return marshal(v, true)
}

// Append appends the encoding of v to dst, as Marshal does. On error it
// returns dst unchanged in length (the bytes after len(dst) may have been
// overwritten).
func Append(dst []byte, v any) ([]byte, error) {
	e := encoder{buf: dst, maxDepth: encodeDepth()}
	if err := e.value(v, 0); err != nil {
		return dst, finishEncErr(err)
	}
	return e.buf, nil
}

func marshal(v any, det bool) ([]byte, error) {
	// Encode into pooled scratch space, then copy out: one allocation of the
	// right size for the result, none for growing it.
	e := encoderPool.Get().(*encoder)
	e.det = det
	e.maxDepth = encodeDepth()
	err := e.value(v, 0)
	var out []byte
	if err == nil {
		out = append([]byte(nil), e.buf...)
	}
	if cap(e.buf) <= maxPooledBuffer {
		e.buf = e.buf[:0]
		encoderPool.Put(e)
	}
	if err != nil {
		return nil, finishEncErr(err)
	}
	return out, nil
}

// maxPooledBuffer is the largest scratch buffer kept for reuse.
const maxPooledBuffer = 64 << 10

var encoderPool = sync.Pool{New: func() any { return &encoder{buf: make([]byte, 0, 512)} }}

func encodeDepth() int {
	if DefaultLimits.MaxDepth > 0 {
		return min(DefaultLimits.MaxDepth, hardMaxDepth)
	}
	return 64
}

type encoder struct {
	buf      []byte
	entries  []entry // scratch for sorting map entries, used as a stack
	det      bool
	maxDepth int
}

type entry struct {
	k string
	v any
}

// value appends v; depth is the number of arrays and maps around it.
func (e *encoder) value(v any, depth int) error {
	switch x := v.(type) {
	case nil:
		e.buf = append(e.buf, 0xe0|simpleNull)
	case bool:
		e.buf = AppendBool(e.buf, x)
	case int64:
		if uint64(x) < aiUint8 {
			e.buf = append(e.buf, byte(x))
		} else {
			e.buf = AppendInt(e.buf, x)
		}
	case float64:
		e.buf = AppendFloat(e.buf, x)
	case string:
		if !e.text(x) {
			return encErr("string is not valid UTF-8")
		}
	case []byte:
		e.buf = AppendBytes(e.buf, x)
	case map[string]any:
		if depth >= e.maxDepth {
			return encErr("arrays and maps nested deeper than %d levels (is the value cyclic?)", e.maxDepth)
		}
		return e.mapValue(x, depth+1)
	case []any:
		if depth >= e.maxDepth {
			return encErr("arrays and maps nested deeper than %d levels (is the value cyclic?)", e.maxDepth)
		}
		e.buf = appendHead(e.buf, majorArray, uint64(len(x)))
		for i, el := range x {
			if err := e.value(el, depth+1); err != nil {
				return withSeg(err, "["+strconv.Itoa(i)+"]")
			}
		}
	case int:
		e.buf = AppendInt(e.buf, int64(x))
	case int32:
		e.buf = AppendInt(e.buf, int64(x))
	case int16:
		e.buf = AppendInt(e.buf, int64(x))
	case int8:
		e.buf = AppendInt(e.buf, int64(x))
	case uint8:
		e.buf = AppendInt(e.buf, int64(x))
	case uint16:
		e.buf = AppendInt(e.buf, int64(x))
	case uint32:
		e.buf = AppendInt(e.buf, int64(x))
	case uint:
		if uint64(x) > math.MaxInt64 {
			return encErr("%d does not fit in int64", x)
		}
		e.buf = AppendInt(e.buf, int64(x))
	case uint64:
		if x > math.MaxInt64 {
			return encErr("%d does not fit in int64", x)
		}
		e.buf = AppendInt(e.buf, int64(x))
	case float32:
		e.buf = AppendFloat(e.buf, float64(x))
	default:
		return encErr("%s is not in the value model (use nil, bool, int64, float64, string, []byte, []any or map[string]any)", typeName(v))
	}
	return nil
}

func typeName(v any) string { return fmt.Sprintf("%T", v) }

func (e *encoder) mapValue(m map[string]any, depth int) error {
	e.buf = appendHead(e.buf, majorMap, uint64(len(m)))
	if !e.det || len(m) < 2 {
		for k, v := range m {
			if err := e.entry(k, v, depth); err != nil {
				return err
			}
		}
		return nil
	}
	// Sort this map's entries on top of the scratch stack; nested maps push
	// theirs above them (a reallocation leaves this slice's view intact).
	base := len(e.entries)
	for k, v := range m {
		e.entries = append(e.entries, entry{k, v})
	}
	sorted := e.entries[base:]
	slices.SortFunc(sorted, compareEntries)
	var err error
	for _, en := range sorted {
		if err = e.entry(en.k, en.v, depth); err != nil {
			break
		}
	}
	clear(e.entries[base:]) // drop references before the scratch goes back to the pool
	e.entries = e.entries[:base]
	return err
}

func (e *encoder) entry(k string, v any, depth int) error {
	if !e.text(k) {
		return encErr("map key %q is not valid UTF-8", k)
	}
	if err := e.value(v, depth); err != nil {
		return withSeg(err, "."+k)
	}
	return nil
}

// text appends a text string, or reports that s is not valid UTF-8. Short
// ASCII strings, which map keys mostly are, take a fast path.
func (e *encoder) text(s string) bool {
	if len(s) < aiUint8 {
		for i := 0; i < len(s); i++ {
			if s[i] >= utf8.RuneSelf {
				if !utf8.ValidString(s) {
					return false
				}
				break
			}
		}
		e.buf = append(e.buf, majorText<<5|byte(len(s)))
		e.buf = append(e.buf, s...)
		return true
	}
	if !utf8.ValidString(s) {
		return false
	}
	e.buf = AppendString(e.buf, s)
	return true
}

// compareEntries orders map entries as their encoded keys sort bytewise: a
// text string's head grows with its length, so shorter keys come first and
// keys of one length compare bytewise.
func compareEntries(a, b entry) int {
	if len(a.k) != len(b.k) {
		if len(a.k) < len(b.k) {
			return -1
		}
		return 1
	}
	return strings.Compare(a.k, b.k)
}

// appendHead appends the shortest head of the major type with argument n.
func appendHead(dst []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < aiUint8:
		return append(dst, m|byte(n))
	case n <= math.MaxUint8:
		return append(dst, m|aiUint8, byte(n))
	case n <= math.MaxUint16:
		return append(dst, m|aiUint16, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(dst, m|aiUint32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(dst, m|aiUint64, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// AppendNull appends null.
func AppendNull(dst []byte) []byte { return append(dst, 0xe0|simpleNull) }

// AppendBool appends false or true.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, 0xe0|simpleTrue)
	}
	return append(dst, 0xe0|simpleFalse)
}

// AppendInt appends an integer in its shortest form.
func AppendInt(dst []byte, v int64) []byte {
	if uint64(v) < aiUint8 { // 0…23: the head alone, inlined at the caller
		return append(dst, byte(v))
	}
	return appendInt(dst, v)
}

func appendInt(dst []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(dst, majorUint, uint64(v))
	}
	return appendHead(dst, majorNint, uint64(^v)) // -1 - v
}

// AppendString appends a text string. s must be valid UTF-8 (check with
// utf8.ValidString where it may not be): decoders refuse text that is not,
// and this function does not check, to stay cheap. Marshal does check.
func AppendString(dst []byte, s string) []byte {
	dst = appendHead(dst, majorText, uint64(len(s)))
	return append(dst, s...)
}

// AppendBytes appends a byte string.
func AppendBytes(dst []byte, b []byte) []byte {
	dst = appendHead(dst, majorBytes, uint64(len(b)))
	return append(dst, b...)
}

// AppendArrayHeader appends the head of an array of n elements; the caller
// appends the n elements next. A negative n panics.
func AppendArrayHeader(dst []byte, n int) []byte {
	if n < 0 {
		panic("cbor: AppendArrayHeader with a negative length")
	}
	return appendHead(dst, majorArray, uint64(n))
}

// AppendMapHeader appends the head of a map of n entries; the caller appends
// n keys (text strings, no duplicates) and values next, alternating. A
// negative n panics.
func AppendMapHeader(dst []byte, n int) []byte {
	if n < 0 {
		panic("cbor: AppendMapHeader with a negative length")
	}
	return appendHead(dst, majorMap, uint64(n))
}
