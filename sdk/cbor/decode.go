package cbor

import (
	"encoding/binary"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/internal/word"
)

// Major types and the additional-information values this package names.
const (
	majorUint  = 0
	majorNint  = 1
	majorBytes = 2
	majorText  = 3
	majorArray = 4
	majorMap   = 5
	majorTag   = 6
	majorOther = 7

	aiUint8      = 24
	aiUint16     = 25
	aiUint32     = 26
	aiUint64     = 27
	aiIndefinite = 31

	simpleFalse     = 20
	simpleTrue      = 21
	simpleNull      = 22
	simpleUndefined = 23
	aiSimple8       = 24
	aiFloat16       = 25
	aiFloat32       = 26
	aiFloat64       = 27

	breakByte = 0xff

	tagSelfDescribe = 55799
)

// Limits bound what a decoder accepts. A field that is zero or negative takes
// the value of the same field of DefaultLimits.
type Limits struct {
	// MaxDepth is how deeply arrays and maps may nest: 1 allows a map of
	// scalars, 2 a map of maps. Decoding recurses, so values above 4096 are
	// treated as 4096.
	MaxDepth int
	// MaxBytes is the largest input accepted, in bytes.
	MaxBytes int
	// MaxItems is the most elements one array may have, or entries one map.
	MaxItems int
	// MaxTotalItems is the most data items the whole input may hold: every
	// scalar, string, array, map and map key counts as one.
	MaxTotalItems int
}

// DefaultLimits are the limits of Unmarshal and UnmarshalMap, and the
// fallback for zero fields of any Limits. MaxDepth matches sdk.MaxDepth.
// Marshal refuses values nested deeper than DefaultLimits.MaxDepth, so that
// what it writes decodes (and a cyclic value fails instead of recursing
// forever).
var DefaultLimits = Limits{
	MaxDepth:      64,
	MaxBytes:      16 << 20,
	MaxItems:      1 << 20,
	MaxTotalItems: 1 << 21,
}

// hardMaxDepth caps MaxDepth: decoding recurses once per level.
const hardMaxDepth = 4096

// sharedStringMax is the largest input whose text strings share one copy of
// the input (see the package documentation).
const sharedStringMax = 16 << 10

func (l Limits) resolve() Limits {
	pick := func(v, def, fallback int) int {
		if v > 0 {
			return v
		}
		if def > 0 {
			return def
		}
		return fallback
	}
	r := Limits{
		MaxDepth:      pick(l.MaxDepth, DefaultLimits.MaxDepth, 64),
		MaxBytes:      pick(l.MaxBytes, DefaultLimits.MaxBytes, 16<<20),
		MaxItems:      pick(l.MaxItems, DefaultLimits.MaxItems, 1<<20),
		MaxTotalItems: pick(l.MaxTotalItems, DefaultLimits.MaxTotalItems, 1<<21),
	}
	if r.MaxDepth > hardMaxDepth {
		r.MaxDepth = hardMaxDepth
	}
	return r
}

// Unmarshal decodes one value-model value from data with DefaultLimits.
// Bytes after the value are an error.
func Unmarshal(data []byte) (any, error) {
	return UnmarshalWithLimits(data, DefaultLimits)
}

// UnmarshalWithLimits is Unmarshal with other limits.
func UnmarshalWithLimits(data []byte, lim Limits) (any, error) {
	var d Decoder
	d.lim = lim.resolve()
	d.Reset(data)
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return v, nil
}

// UnmarshalMap decodes a params or result map with DefaultLimits: the value
// at the top level must be a map.
func UnmarshalMap(data []byte) (map[string]any, error) {
	var d Decoder
	d.lim = DefaultLimits.resolve()
	d.Reset(data)
	k, err := d.Peek()
	if err != nil {
		return nil, err
	}
	if k != KindMap {
		ib, arg, _, _ := d.headAt(d.off)
		return nil, errAt(d.off, "the top-level value is %s; want a map", describe(ib, arg))
	}
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	if err := d.end(); err != nil {
		return nil, err
	}
	return v.(map[string]any), nil
}

// Kind is the kind of the next data item, in the value model's terms.
type Kind uint8

// The kinds. KindInvalid is what Peek returns with an error.
const (
	KindInvalid Kind = iota
	KindNull         // null or undefined
	KindBool         // false or true
	KindInt          // an integer (major type 0 or 1)
	KindFloat        // a half, single or double float
	KindString       // a text string
	KindBytes        // a byte string
	KindArray        // an array
	KindMap          // a map
)

var kindNames = [...]string{"invalid", "null", "bool", "integer", "float", "string", "bytes", "array", "map"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Decoder reads value-model values from a CBOR input one item at a time, for
// decoding straight into typed fields without building maps:
//
//	d := cbor.NewDecoder(data, cbor.DefaultLimits)
//	n, err := d.ReadMapHeader()
//	...
//	for i := 0; n < 0 && !d.AtBreak() || i < n; i++ {
//		key, err := d.ReadStringBytes() // no allocation
//		...
//		switch string(key) {            // no allocation either
//		case "a":
//			p.A, err = d.ReadInt()
//		default:
//			err = d.Skip()
//		}
//		...
//	}
//	if n < 0 {
//		err = d.ReadBreak()
//	}
//
// A header of -1 means an indefinite-length array or map: its items run
// until AtBreak reports the break, which ReadBreak consumes. The encoders of
// this package never write indefinite lengths, but other languages' may.
//
// Each Read method reads one item of one kind. When the next item is of
// another kind, it returns an error and leaves the Decoder where it was, so
// that a caller may Peek and try again; after any other error the Decoder's
// position is unspecified (Reset it to reuse it).
//
// The Decoder does not track the arrays and maps whose headers you read: a
// typed decoder's structure bounds its own depth, and it must check keys for
// duplicates itself (ReadValue does). Limits still apply: MaxBytes to the
// input, MaxItems to every header, MaxTotalItems to everything read since
// the last Reset, and MaxDepth within each ReadValue and Skip, counting from
// the item it reads.
//
// A Decoder is not safe for concurrent use. Make one with NewDecoder; a zero
// Decoder (a struct field, say) works after Reset, with DefaultLimits.
type Decoder struct {
	data   []byte // the input; empty when the input is over MaxBytes
	size   int    // the input's real length
	off    int
	items  int
	lim    Limits
	share  bool   // text strings are substrings of str
	hasStr bool   // str holds string(data)
	str    string // a copy of data, made on the first text string when share is set

	// Slabs that ReadValue's strings, integers and floats are boxed in (see
	// box): never reused after Reset, as the values they hold are out.
	strs   []string
	ints   []int64
	floats []float64
}

// NewDecoder returns a Decoder that reads data within lim (zero fields of lim
// take DefaultLimits' values).
func NewDecoder(data []byte, lim Limits) *Decoder {
	d := &Decoder{lim: lim.resolve()}
	d.Reset(data)
	return d
}

// Reset makes the Decoder read data from its start, with the same limits.
// It does not allocate.
func (d *Decoder) Reset(data []byte) {
	if d.lim.MaxTotalItems == 0 { // a zero Decoder: resolved limits have no zero fields
		d.lim = d.lim.resolve()
	}
	d.size = len(data)
	if len(data) > d.lim.MaxBytes {
		data = data[:0]
	}
	d.data = data
	d.off = 0
	d.items = 0
	d.share = len(data) <= sharedStringMax
	d.hasStr = false
	d.str = ""
	d.strs, d.ints, d.floats = nil, nil, nil
}

// Offset returns how many bytes of the input have been read.
func (d *Decoder) Offset() int { return d.off }

// Done reports whether the whole input has been read.
func (d *Decoder) Done() bool { return d.off == len(d.data) && d.size == len(d.data) }

// end is the error of input left after the value.
func (d *Decoder) end() error {
	if d.off != len(d.data) {
		return errAt(d.off, "%d trailing bytes after the value", len(d.data)-d.off)
	}
	return nil
}

func (d *Decoder) eof(off int) error {
	if d.size != len(d.data) {
		return errAt(0, "input of %d bytes exceeds the limit of %d bytes", d.size, d.lim.MaxBytes)
	}
	return errAt(off, "unexpected end of input")
}

// rawHead parses the head at off: the initial byte, the argument (the value,
// length, count, simple value or float bits; 0 for additional information
// 31) and the offset after the head.
func (d *Decoder) rawHead(off int) (ib byte, arg uint64, next int, err error) {
	data := d.data
	if off >= len(data) {
		return 0, 0, off, d.eof(off)
	}
	ib = data[off]
	switch ai := ib & 0x1f; {
	case ai < aiUint8:
		return ib, uint64(ai), off + 1, nil
	case ai == aiUint8:
		if len(data)-off < 2 {
			return 0, 0, off, d.eof(off)
		}
		return ib, uint64(data[off+1]), off + 2, nil
	case ai == aiUint16:
		if len(data)-off < 3 {
			return 0, 0, off, d.eof(off)
		}
		return ib, uint64(binary.BigEndian.Uint16(data[off+1:])), off + 3, nil
	case ai == aiUint32:
		if len(data)-off < 5 {
			return 0, 0, off, d.eof(off)
		}
		return ib, uint64(binary.BigEndian.Uint32(data[off+1:])), off + 5, nil
	case ai == aiUint64:
		if len(data)-off < 9 {
			return 0, 0, off, d.eof(off)
		}
		return ib, binary.BigEndian.Uint64(data[off+1:]), off + 9, nil
	case ai == aiIndefinite:
		switch ib >> 5 {
		case majorUint, majorNint, majorTag:
			return 0, 0, off, errAt(off, "additional information 31 is not valid for major type %d", ib>>5)
		}
		return ib, 0, off + 1, nil
	default:
		return 0, 0, off, errAt(off, "reserved additional information %d", ai)
	}
}

// headAt is rawHead that skips self-describe tags and refuses other tags.
func (d *Decoder) headAt(off int) (ib byte, arg uint64, next int, err error) {
	for {
		ib, arg, next, err = d.rawHead(off)
		if err != nil || ib>>5 != majorTag {
			return ib, arg, next, err
		}
		if arg != tagSelfDescribe {
			return 0, 0, off, tagError(off, arg)
		}
		off = next
	}
}

// counted counts one data item and reports whether the input is within
// MaxTotalItems (tooManyItems is the error when not).
func (d *Decoder) counted() bool {
	d.items++
	return d.items <= d.lim.MaxTotalItems
}

func (d *Decoder) tooManyItems(off int) error {
	return errAt(off, "more than %d data items in the input", d.lim.MaxTotalItems)
}

// checkCount checks the declared count of a definite-length array (per = 1)
// or map (per = 2 data items per entry) before anything is allocated.
func (d *Decoder) checkCount(off int, ib byte, arg uint64) (int, error) {
	what, per := "array", uint64(1)
	if ib>>5 == majorMap {
		what, per = "map", 2
	}
	if arg > uint64(d.lim.MaxItems) {
		return 0, errAt(off, "%s of %d entries exceeds the limit of %d", what, arg, d.lim.MaxItems)
	}
	if rem := uint64(len(d.data) - d.off); arg*per > rem {
		return 0, errAt(off, "%s declares %d entries but only %d bytes remain", what, arg, rem)
	}
	if budget := uint64(d.lim.MaxTotalItems - d.items); arg*per > budget {
		return 0, errAt(off, "%s of %d entries exceeds the limit of %d data items in the input", what, arg, d.lim.MaxTotalItems)
	}
	return int(arg), nil
}

func (d *Decoder) tooDeep(off int) error {
	return errAt(off, "arrays and maps nested deeper than %d levels", d.lim.MaxDepth)
}

func (d *Decoder) tooMany(off int, ib byte) error {
	what := "array"
	if ib>>5 == majorMap {
		what = "map"
	}
	return errAt(off, "%s has more than %d entries", what, d.lim.MaxItems)
}

// strBody reads the content of the byte or text string whose head (ib, arg)
// started at start and ended at d.off. A definite-length string aliases the
// input; the chunks of an indefinite-length one are joined into a new slice
// (fresh) when join is set. Text is checked to be valid UTF-8.
func (d *Decoder) strBody(start int, ib byte, arg uint64, join bool) (b []byte, fresh bool, err error) {
	major := ib >> 5
	if ib&0x1f != aiIndefinite {
		if rem := uint64(len(d.data) - d.off); arg > rem {
			return nil, false, errAt(start, "string of %d bytes but only %d bytes remain", arg, rem)
		}
		end := d.off + int(arg)
		b = d.data[d.off:end:end]
		d.off = end
		if major == majorText && !utf8.Valid(b) {
			return nil, false, utf8Error(start, b)
		}
		return b, false, nil
	}
	if join {
		b = []byte{}
	}
	for {
		if d.off >= len(d.data) {
			return nil, false, d.eof(d.off)
		}
		if d.data[d.off] == breakByte {
			d.off++
			return b, join, nil
		}
		cstart := d.off
		cib, carg, next, err := d.rawHead(cstart)
		if err != nil {
			return nil, false, err
		}
		if cib>>5 != major || cib&0x1f == aiIndefinite {
			return nil, false, errAt(cstart, "a chunk of an indefinite-length %s is %s; want a definite-length one",
				describe(ib, 0)[2:], describe(cib, carg))
		}
		d.off = next
		chunk, _, err := d.strBody(cstart, cib, carg, false)
		if err != nil {
			return nil, false, err
		}
		if join {
			b = append(b, chunk...)
		}
	}
}

// text returns the text string whose head (ib, arg) started at start.
func (d *Decoder) text(start int, ib byte, arg uint64) (string, error) {
	b, fresh, err := d.strBody(start, ib, arg, true)
	if err != nil {
		return "", err
	}
	if fresh || !d.share {
		return string(b), nil
	}
	if !d.hasStr {
		d.str = string(d.data)
		d.hasStr = true
	}
	return d.str[d.off-len(b) : d.off], nil
}

// sharedASCII is shortText's commonest case, one call cheaper: ASCII text
// of at most 8 bytes, once the input's shared copy exists.
func (d *Decoder) sharedASCII(start, n int) (string, bool) {
	if !d.hasStr || !word.ASCIIAt(d.data, start+1, n) { // which also checks the bytes are there
		return "", false
	}
	d.off = start + 1 + n
	return d.str[start+1 : d.off], true
}

// shortText returns the definite-length text string of n < 24 bytes whose
// one-byte head was at start.
func (d *Decoder) shortText(start, n int) (string, error) {
	end := d.off + n
	if end > len(d.data) {
		return "", errAt(start, "string of %d bytes but only %d bytes remain", n, len(d.data)-d.off)
	}
	b := d.data[d.off:end]
	if !word.ASCIIAt(d.data, d.off, n) && !word.ValidUTF8(b) { // no loop over the bytes of short ASCII text
		return "", utf8Error(start, b)
	}
	d.off = end
	if !d.share {
		return string(b), nil
	}
	if !d.hasStr {
		d.str = string(d.data)
		d.hasStr = true
	}
	return d.str[end-n : end], nil
}

// float decodes the float with the given initial byte and bits.
func float(ib byte, bits uint64) float64 {
	switch ib & 0x1f {
	case aiFloat16:
		return float16to64(uint16(bits))
	case aiFloat32:
		return float64(math.Float32frombits(uint32(bits)))
	}
	return math.Float64frombits(bits)
}

// simple decodes a major type 7 item: a bool, null, undefined or a float;
// the rest are errors.
func simple(start int, ib byte, arg uint64) (any, error) {
	switch ib & 0x1f {
	case simpleFalse:
		return false, nil
	case simpleTrue:
		return true, nil
	case simpleNull, simpleUndefined:
		return nil, nil
	case aiFloat16, aiFloat32, aiFloat64:
		return float(ib, arg), nil
	}
	return nil, checkSimple(start, ib, arg)
}

// checkSimple reports whether a major type 7 item is in the value model.
func checkSimple(start int, ib byte, arg uint64) error {
	switch ai := ib & 0x1f; ai {
	case simpleFalse, simpleTrue, simpleNull, simpleUndefined, aiFloat16, aiFloat32, aiFloat64:
		return nil
	case aiIndefinite:
		return errAt(start, "unexpected break")
	case aiSimple8:
		if arg < 32 {
			return errAt(start, "simple value %d must be encoded in one byte", arg)
		}
	}
	return errAt(start, "simple value %d is not in the value model", arg)
}

// value decodes one item; depth is the number of arrays and maps around it.
func (d *Decoder) value(depth int) (any, error) {
	start := d.off
	// Fast paths for the commonest items, whose head is one byte.
	if start < len(d.data) {
		switch ib := d.data[start]; {
		case ib < aiUint8: // 0..23
			if !d.counted() {
				return nil, d.tooManyItems(start)
			}
			d.off++
			return int64(ib), nil
		case ib-majorText<<5 < aiUint8: // a text string shorter than 24 bytes
			if !d.counted() {
				return nil, d.tooManyItems(start)
			}
			t, ok := d.sharedASCII(start, int(ib&0x1f))
			if !ok {
				d.off++
				var err error
				if t, err = d.shortText(start, int(ib&0x1f)); err != nil {
					return nil, err
				}
			}
			return box(&d.strs, stringType, t), nil
		}
	}
	ib, arg, next, err := d.headAt(start)
	if err != nil {
		return nil, err
	}
	if !d.counted() {
		return nil, d.tooManyItems(start)
	}
	d.off = next
	switch ib >> 5 {
	case majorUint:
		if arg > math.MaxInt64 {
			return nil, intRangeError(start, majorUint, arg)
		}
		if arg <= math.MaxUint8 { // boxed without allocating by the runtime
			return int64(arg), nil
		}
		return box(&d.ints, int64Type, int64(arg)), nil
	case majorNint:
		if arg > math.MaxInt64 {
			return nil, intRangeError(start, majorNint, arg)
		}
		return box(&d.ints, int64Type, int64(^arg)), nil
	case majorBytes:
		b, fresh, err := d.strBody(start, ib, arg, true)
		if err != nil {
			return nil, err
		}
		if fresh {
			return b, nil
		}
		c := make([]byte, len(b))
		copy(c, b)
		return c, nil
	case majorText:
		s, err := d.text(start, ib, arg)
		if err != nil {
			return nil, err
		}
		return box(&d.strs, stringType, s), nil
	case majorArray:
		if depth >= d.lim.MaxDepth {
			return nil, d.tooDeep(start)
		}
		return d.array(start, ib, arg, depth+1)
	case majorMap:
		if depth >= d.lim.MaxDepth {
			return nil, d.tooDeep(start)
		}
		return d.mapValue(start, ib, arg, depth+1)
	}
	if ai := ib & 0x1f; ai >= aiFloat16 && ai <= aiFloat64 {
		return box(&d.floats, float64Type, float(ib, arg)), nil
	}
	return simple(start, ib, arg)
}

// eface is the memory layout of an interface value without methods.
type eface struct {
	typ, data unsafe.Pointer
}

func typeOf(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	stringType  = typeOf("")
	int64Type   = typeOf(int64(0))
	float64Type = typeOf(float64(0))
)

// Slabs start small and double up to maxSlab values.
const (
	minSlab = 4
	maxSlab = 64
)

// box returns v as an interface value whose data is v's copy in the slab:
// what the runtime does when it boxes a value, with one allocation per slab
// instead of one per value (a map decoded from a params payload holds many
// strings and floats). A slab's values are never changed once boxed.
func box[T any](slab *[]T, typ unsafe.Pointer, v T) any {
	if len(*slab) == cap(*slab) {
		*slab = make([]T, 0, min(max(2*cap(*slab), minSlab), maxSlab))
	}
	*slab = append(*slab, v)
	var x any
	e := (*eface)(unsafe.Pointer(&x))
	e.typ, e.data = typ, unsafe.Pointer(&(*slab)[len(*slab)-1])
	return x
}

func (d *Decoder) array(start int, ib byte, arg uint64, depth int) (any, error) {
	if ib&0x1f == aiIndefinite {
		a := []any{}
		for {
			if d.off >= len(d.data) {
				return nil, d.eof(d.off)
			}
			if d.data[d.off] == breakByte {
				d.off++
				return a, nil
			}
			if len(a) >= d.lim.MaxItems {
				return nil, d.tooMany(start, ib)
			}
			v, err := d.value(depth)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
	}
	n, err := d.checkCount(start, ib, arg)
	if err != nil {
		return nil, err
	}
	a := make([]any, n)
	for i := range a {
		if a[i], err = d.value(depth); err != nil {
			return nil, err
		}
	}
	return a, nil
}

func (d *Decoder) mapValue(start int, ib byte, arg uint64, depth int) (any, error) {
	indefinite := ib&0x1f == aiIndefinite
	n := 0
	var m map[string]any
	if indefinite {
		m = map[string]any{}
	} else {
		var err error
		if n, err = d.checkCount(start, ib, arg); err != nil {
			return nil, err
		}
		m = make(map[string]any, n)
	}
	for i := 0; ; i++ {
		if indefinite {
			if d.off >= len(d.data) {
				return nil, d.eof(d.off)
			}
			if d.data[d.off] == breakByte {
				d.off++
				return m, nil
			}
			if i >= d.lim.MaxItems {
				return nil, d.tooMany(start, ib)
			}
		} else if i == n {
			return m, nil
		}
		kstart := d.off
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth)
		if err != nil {
			return nil, err
		}
		m[k] = v
		if len(m) != i+1 {
			return nil, errAt(kstart, "duplicate map key %q", k)
		}
	}
}

// key reads a map key, which must be a text string.
func (d *Decoder) key() (string, error) {
	start := d.off
	if start < len(d.data) {
		if ib := d.data[start]; ib-majorText<<5 < aiUint8 { // shorter than 24 bytes
			if !d.counted() {
				return "", d.tooManyItems(start)
			}
			if t, ok := d.sharedASCII(start, int(ib&0x1f)); ok {
				return t, nil
			}
			d.off++
			return d.shortText(start, int(ib&0x1f))
		}
	}
	ib, arg, next, err := d.headAt(start)
	if err != nil {
		return "", err
	}
	if ib>>5 != majorText {
		return "", errAt(start, "map key is %s; keys must be text strings", describe(ib, arg))
	}
	if !d.counted() {
		return "", d.tooManyItems(start)
	}
	d.off = next
	return d.text(start, ib, arg)
}

// skip checks and skips one item, as value decodes it, without building
// anything. It does not detect duplicate map keys.
func (d *Decoder) skip(depth int) error {
	start := d.off
	ib, arg, next, err := d.headAt(start)
	if err != nil {
		return err
	}
	if !d.counted() {
		return d.tooManyItems(start)
	}
	d.off = next
	switch ib >> 5 {
	case majorUint, majorNint:
		if arg > math.MaxInt64 {
			return intRangeError(start, ib>>5, arg)
		}
		return nil
	case majorBytes, majorText:
		_, _, err := d.strBody(start, ib, arg, false)
		return err
	case majorArray, majorMap:
		if depth >= d.lim.MaxDepth {
			return d.tooDeep(start)
		}
		return d.skipContainer(start, ib, arg, depth+1)
	}
	return checkSimple(start, ib, arg)
}

func (d *Decoder) skipContainer(start int, ib byte, arg uint64, depth int) error {
	isMap := ib>>5 == majorMap
	indefinite := ib&0x1f == aiIndefinite
	n := 0
	if !indefinite {
		var err error
		if n, err = d.checkCount(start, ib, arg); err != nil {
			return err
		}
	}
	for i := 0; ; i++ {
		if indefinite {
			if d.off >= len(d.data) {
				return d.eof(d.off)
			}
			if d.data[d.off] == breakByte {
				d.off++
				return nil
			}
			if i >= d.lim.MaxItems {
				return d.tooMany(start, ib)
			}
		} else if i == n {
			return nil
		}
		if isMap {
			kstart := d.off
			kib, karg, _, err := d.headAt(kstart)
			if err != nil {
				return err
			}
			if kib>>5 != majorText {
				return errAt(kstart, "map key is %s; keys must be text strings", describe(kib, karg))
			}
			if err := d.skip(depth); err != nil {
				return err
			}
		}
		if err := d.skip(depth); err != nil {
			return err
		}
	}
}

// Peek returns the kind of the next item without reading it. Self-describe
// tags are looked through; an item outside the value model (another tag, a
// simple value, a break) is an error.
func (d *Decoder) Peek() (Kind, error) {
	ib, arg, _, err := d.headAt(d.off)
	if err != nil {
		return KindInvalid, err
	}
	switch ib >> 5 {
	case majorUint, majorNint:
		return KindInt, nil
	case majorBytes:
		return KindBytes, nil
	case majorText:
		return KindString, nil
	case majorArray:
		return KindArray, nil
	case majorMap:
		return KindMap, nil
	}
	switch ib & 0x1f {
	case simpleFalse, simpleTrue:
		return KindBool, nil
	case simpleNull, simpleUndefined:
		return KindNull, nil
	case aiFloat16, aiFloat32, aiFloat64:
		return KindFloat, nil
	}
	return KindInvalid, checkSimple(d.off, ib, arg)
}

// next reads the head of the next item for a Read method that wants kind:
// on success the item is counted and d.off is past its head; on a kind
// mismatch d.off is unchanged.
func (d *Decoder) next(want Kind) (start int, ib byte, arg uint64, err error) {
	start = d.off
	ib, arg, next, err := d.headAt(start)
	if err != nil {
		return start, 0, 0, err
	}
	ok := false
	switch want {
	case KindNull:
		ok = ib == 0xe0|simpleNull || ib == 0xe0|simpleUndefined
	case KindBool:
		ok = ib == 0xe0|simpleFalse || ib == 0xe0|simpleTrue
	case KindInt:
		ok = ib>>5 == majorUint || ib>>5 == majorNint
	case KindFloat:
		ok = ib >= 0xe0|aiFloat16 && ib <= 0xe0|aiFloat64
	case KindString:
		ok = ib>>5 == majorText
	case KindBytes:
		ok = ib>>5 == majorBytes
	case KindArray:
		ok = ib>>5 == majorArray
	case KindMap:
		ok = ib>>5 == majorMap
	}
	if !ok {
		if ib>>5 == majorOther {
			if serr := checkSimple(start, ib, arg); serr != nil {
				return start, 0, 0, serr
			}
		}
		return start, 0, 0, errAt(start, "expected %s, got %s", kindArticle[want], describe(ib, arg))
	}
	if !d.counted() {
		return start, 0, 0, d.tooManyItems(start)
	}
	d.off = next
	return start, ib, arg, nil
}

var kindArticle = [...]string{"", "null", "a bool", "an integer", "a float", "a text string", "a byte string", "an array", "a map"}

// ReadNull reads a null (or undefined).
func (d *Decoder) ReadNull() error {
	_, _, _, err := d.next(KindNull)
	return err
}

// ReadBool reads a bool.
func (d *Decoder) ReadBool() (bool, error) {
	_, ib, _, err := d.next(KindBool)
	return ib == 0xe0|simpleTrue, err
}

// ReadInt reads an integer; one outside int64 is an error. It does not
// accept floats, not even integral ones: Peek first to accept both.
func (d *Decoder) ReadInt() (int64, error) {
	start, ib, arg, err := d.next(KindInt)
	if err != nil {
		return 0, err
	}
	if arg > math.MaxInt64 {
		return 0, intRangeError(start, ib>>5, arg)
	}
	if ib>>5 == majorNint {
		return int64(^arg), nil
	}
	return int64(arg), nil
}

// ReadFloat reads a float of any width. It does not accept integers: Peek
// first to accept both.
func (d *Decoder) ReadFloat() (float64, error) {
	_, ib, arg, err := d.next(KindFloat)
	if err != nil {
		return 0, err
	}
	return float(ib, arg), nil
}

// ReadString reads a text string (see the package documentation for how
// strings share memory).
func (d *Decoder) ReadString() (string, error) {
	start, ib, arg, err := d.next(KindString)
	if err != nil {
		return "", err
	}
	return d.text(start, ib, arg)
}

// ReadStringBytes reads a text string without allocating: the result aliases
// the input, so it is valid only while the input is, and must not be
// modified. It is meant for comparing keys. (An indefinite-length string is
// joined into a new slice.) The text is checked to be valid UTF-8.
func (d *Decoder) ReadStringBytes() ([]byte, error) {
	start, ib, arg, err := d.next(KindString)
	if err != nil {
		return nil, err
	}
	b, _, err := d.strBody(start, ib, arg, true)
	return b, err
}

// ReadBytes reads a byte string into a new slice.
func (d *Decoder) ReadBytes() ([]byte, error) {
	start, ib, arg, err := d.next(KindBytes)
	if err != nil {
		return nil, err
	}
	b, fresh, err := d.strBody(start, ib, arg, true)
	if err != nil || fresh {
		return b, err
	}
	c := make([]byte, len(b))
	copy(c, b)
	return c, nil
}

// ReadArrayHeader reads the head of an array and returns its number of
// elements, or -1 for an indefinite-length array (read elements until
// AtBreak, then ReadBreak). The count has been checked against MaxItems and
// against the input that remains, so it is safe to allocate for.
func (d *Decoder) ReadArrayHeader() (int, error) {
	return d.header(KindArray)
}

// ReadMapHeader reads the head of a map and returns its number of entries,
// or -1 for an indefinite-length map (read key and value pairs until
// AtBreak, then ReadBreak). Keys must be text strings: read them with
// ReadString or ReadStringBytes, which fail on anything else.
func (d *Decoder) ReadMapHeader() (int, error) {
	return d.header(KindMap)
}

func (d *Decoder) header(k Kind) (int, error) {
	start, ib, arg, err := d.next(k)
	if err != nil {
		return 0, err
	}
	if ib&0x1f == aiIndefinite {
		return -1, nil
	}
	n, err := d.checkCount(start, ib, arg)
	if err != nil {
		d.off = start
		d.items--
		return 0, err
	}
	return n, nil
}

// AtBreak reports whether the next byte is the break that ends an
// indefinite-length array or map.
func (d *Decoder) AtBreak() bool {
	return d.off < len(d.data) && d.data[d.off] == breakByte
}

// ReadBreak consumes the break that ends an indefinite-length array or map.
func (d *Decoder) ReadBreak() error {
	if !d.AtBreak() {
		if d.off >= len(d.data) {
			return d.eof(d.off)
		}
		return errAt(d.off, "expected a break")
	}
	d.off++
	return nil
}

// ReadValue reads any value-model value, arrays and maps included, as
// Unmarshal does.
func (d *Decoder) ReadValue() (any, error) {
	return d.value(0)
}

// Skip reads past one item, arrays and maps included, checking it as
// ReadValue would (well-formed, in the value model, within the limits) but
// without building it and without checking map keys for duplicates.
func (d *Decoder) Skip() error {
	return d.skip(0)
}
