package sdk

import (
	"math"
	"reflect"
	"sort"
	"unicode/utf8"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
)

// The fast CBOR path of typed methods: the plan of a struct, compiled once
// (prepareFast) into what a decoder needs to read it in one pass over the
// bytes, with few function calls and loop iterations. On wasm every loop
// header a guest executes may exit to the host (wazero's
// WithCloseOnContextDone), and Go's wasm backend puts one in almost every
// function that calls another, so calls and loop iterations are the cost:
// the decoder reads heads inline, matches keys by loading their encoded
// bytes as words (the runtime's byte comparison loops once per byte on wasm)
// and keeps the fields it has seen in a bit mask.
//
// It covers what params usually are: definite-length maps whose keys are
// wire names, and values of scalar, string, []byte, struct, pointer-to-
// struct and slice fields. Anything else — an alias, a duplicate or
// indefinite-length item, a tag, a value of the wrong type, a missing
// required field, a plan with map or any fields — makes it give up, and the
// general path (codec_cbor.go) decodes the params from the start, with its
// rules and its errors. So the fast path never decides an error, and when it
// succeeds it gives what the general path would.

// maxFastFields is the most fields a struct may have for the fast path: one
// bit each in a uint64.
const maxFastFields = 64

// fastKey is a field's wire name as a CBOR text string, head included, and
// its first 16 bytes as two little-endian words, for comparing a key in the
// input with two loads.
type fastKey struct {
	enc        []byte
	w0, w1     uint64
	m0, m1     uint64 // the masks of the bytes of w0 and w1 that are the key's
	shortEnced bool   // len(enc) <= 16
}

func newFastKey(name string) fastKey {
	k := fastKey{enc: cbor.AppendString(nil, name)}
	var pad [16]byte
	n := copy(pad[:], k.enc)
	k.w0, k.w1 = le64(pad[:8]), le64(pad[8:])
	k.m0, k.m1 = byteMask(min(n, 8)), byteMask(max(n-8, 0))
	k.shortEnced = len(k.enc) <= 16
	return k
}

// byteMask has the low n bytes set.
func byteMask(n int) uint64 {
	if n >= 8 {
		return math.MaxUint64
	}
	return 1<<(8*uint(n)) - 1
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

// load64 returns the 8 bytes of b at off as a little-endian word, the bytes
// past the end of b as zeros.
func load64(b []byte, off int) uint64 {
	if off+8 <= len(b) {
		return le64(b[off:])
	}
	var x uint64
	switch r := len(b) - off; {
	case r >= 7:
		x |= uint64(b[off+6]) << 48
		fallthrough
	case r >= 6:
		x |= uint64(b[off+5]) << 40
		fallthrough
	case r >= 5:
		x |= uint64(b[off+4]) << 32
		fallthrough
	case r >= 4:
		x |= uint64(b[off+3]) << 24
		fallthrough
	case r >= 3:
		x |= uint64(b[off+2]) << 16
		fallthrough
	case r >= 2:
		x |= uint64(b[off+1]) << 8
		fallthrough
	case r >= 1:
		x |= uint64(b[off])
	}
	return x
}

// at reports whether the key is next in data at off.
func (k *fastKey) at(data []byte, off int) bool {
	if off+len(k.enc) > len(data) {
		return false
	}
	if !k.shortEnced {
		return string(data[off:off+len(k.enc)]) == string(k.enc)
	}
	if load64(data, off)&k.m0 != k.w0 {
		return false
	}
	return k.m1 == 0 || load64(data, off+8)&k.m1 == k.w1
}

// fastPlan is what the fast path knows of a struct beyond its codec.
type fastPlan struct {
	order  []uint16 // field indexes in the order a deterministic encoder writes keys (shorter first, then bytewise)
	pos    []uint16 // the inverse of order: a field's place in it
	all    uint64   // a bit per field
	req    uint64   // the required fields
	def    uint64   // the fields with a default
	decode bool     // no map or any inside: the fast path decodes it
}

// fastOK reports whether the fast path can decode values of c: no map or
// any inside, no struct over maxFastFields fields.
func (c *codec) fastOK() bool {
	switch c.kind {
	case cMap, cAny:
		return false
	case cSlice, cPtr:
		return c.elem.fastOK()
	case cStruct:
		return c.fast != nil && c.fast.decode
	}
	return true
}

// prepareFast compiles a struct's plan for the fast path, once its fields'
// plans are complete (plans are built bottom-up): every field's key, and
// for a struct of at most maxFastFields fields, the fast decoder's plan.
func (c *codec) prepareFast() {
	for i := range c.fields {
		f := &c.fields[i]
		f.key = newFastKey(f.name)
		if f.c.kind == cPtr {
			c.hasPtr = true
		}
	}
	if len(c.fields) > maxFastFields {
		return
	}
	fp := &fastPlan{order: make([]uint16, len(c.fields)), decode: true}
	for i := range c.fields {
		f := &c.fields[i]
		fp.order[i] = uint16(i)
		bit := uint64(1) << i
		fp.all |= bit
		if f.required {
			fp.req |= bit
		}
		if f.def != nil {
			fp.def |= bit
		}
		if !f.c.fastOK() {
			fp.decode = false
		}
	}
	// Deterministic CBOR (the host's encoder among others) sorts keys by
	// their encoded bytes: the decoder guesses the next key in that order.
	sort.Slice(fp.order, func(i, j int) bool {
		return string(c.fields[fp.order[i]].key.enc) < string(c.fields[fp.order[j]].key.enc)
	})
	fp.pos = make([]uint16, len(fp.order))
	for i, fi := range fp.order {
		fp.pos[fi] = uint16(i)
	}
	c.fast = fp
}

// fastDecoder reads CBOR params for the fast path.
type fastDecoder struct {
	data  []byte
	off   int
	str   string // string(data), made for the first text value when data is small
	share bool
}

// decodeFast fills the zero struct at p from data and reports whether it
// could; when it could not, the struct may be partly filled.
func (c *codec) decodeFast(p unsafe.Pointer, data []byte) bool {
	if c.fast == nil || !c.fast.decode || len(data) == 0 || len(data) > cbor.DefaultLimits.MaxBytes ||
		len(data) > cbor.DefaultLimits.MaxTotalItems {
		// Every data item takes a byte at least: input no longer than
		// MaxTotalItems cannot hold more items than the limit.
		return false
	}
	d := fastDecoder{data: data, share: len(data) <= sharedStrings}
	n, ok := d.mapHead()
	if !ok || !d.structBody(c, p, n) {
		return false
	}
	return d.off == len(data)
}

// sharedStrings is the largest input whose text values share one copy of
// it, as the cbor package's Decoder shares them.
const sharedStrings = 16 << 10

// head reads a definite head: the initial byte and its argument.
func (d *fastDecoder) head() (ib byte, arg uint64, ok bool) {
	data, off := d.data, d.off
	if off >= len(data) {
		return 0, 0, false
	}
	ib = data[off]
	switch ai := ib & 0x1f; {
	case ai < 24:
		d.off = off + 1
		return ib, uint64(ai), true
	case ai == 24 && off+2 <= len(data):
		d.off = off + 2
		return ib, uint64(data[off+1]), true
	case ai == 25 && off+3 <= len(data):
		d.off = off + 3
		return ib, uint64(data[off+1])<<8 | uint64(data[off+2]), true
	case ai == 26 && off+5 <= len(data):
		d.off = off + 5
		return ib, uint64(data[off+1])<<24 | uint64(data[off+2])<<16 | uint64(data[off+3])<<8 | uint64(data[off+4]), true
	case ai == 27 && off+9 <= len(data):
		d.off = off + 9
		return ib, le64swap(data[off+1:]), true
	}
	return 0, 0, false
}

func le64swap(b []byte) uint64 {
	_ = b[7]
	return uint64(b[7]) | uint64(b[6])<<8 | uint64(b[5])<<16 | uint64(b[4])<<24 |
		uint64(b[3])<<32 | uint64(b[2])<<40 | uint64(b[1])<<48 | uint64(b[0])<<56
}

// count reads the head of a definite array (per = 1) or map (per = 2) and
// checks its count against the limits and the input left.
func (d *fastDecoder) count(major byte, per int) (int, bool) {
	ib, arg, ok := d.head()
	if !ok || ib>>5 != major || arg > uint64(cbor.DefaultLimits.MaxItems) ||
		int(arg)*per > len(d.data)-d.off {
		return 0, false
	}
	return int(arg), true
}

func (d *fastDecoder) mapHead() (int, bool) { return d.count(5, 2) }

// text reads a definite text string's bytes, not yet checked to be UTF-8.
func (d *fastDecoder) text(major byte) ([]byte, bool) {
	ib, arg, ok := d.head()
	if !ok || ib>>5 != major || arg > uint64(len(d.data)-d.off) {
		return nil, false
	}
	start := d.off
	d.off += int(arg)
	return d.data[start:d.off:d.off], true
}

// validText reports whether b is UTF-8, without a loop for short ASCII.
func validText(b []byte) bool {
	switch n := len(b); {
	case n == 0:
		return true
	case n <= 8:
		return load64(b, 0)&0x8080808080808080 == 0 || utf8.Valid(b)
	case n <= 16:
		return (le64(b)|load64(b, 8))&0x8080808080808080 == 0 || utf8.Valid(b)
	}
	return utf8.Valid(b)
}

// structBody reads n map entries into the zero struct at p.
func (d *fastDecoder) structBody(c *codec, p unsafe.Pointer, n int) bool {
	fp := c.fast
	var seen uint64
	guess := 0 // the next key expected, in fp.order
	for i := 0; i < n; i++ {
		fi := -1
		if guess < len(fp.order) {
			if g := int(fp.order[guess]); c.fields[g].key.at(d.data, d.off) {
				fi = g
			}
		}
		if fi < 0 { // keys in another order (Go's map order, say)
			for j := range c.fields {
				if c.fields[j].key.at(d.data, d.off) {
					fi = j
					break
				}
			}
		}
		if fi >= 0 {
			d.off += len(c.fields[fi].key.enc)
			guess = int(fp.pos[fi]) + 1
		}
		if fi < 0 {
			key, ok := d.text(3)
			if !ok {
				return false
			}
			r, known := c.lookup(key)
			if !known {
				if !validText(key) || !d.skipScalar() {
					return false
				}
				continue
			}
			if r.rank != 0 { // an alias: the general path ranks names
				return false
			}
			fi = int(r.field)
		}
		bit := uint64(1) << fi
		if seen&bit != 0 {
			return false
		}
		if d.off < len(d.data) && (d.data[d.off] == 0xf6 || d.data[d.off] == 0xf7) { // null: absent
			d.off++
			continue
		}
		seen |= bit
		f := &c.fields[fi]
		if !d.value(f.c, unsafe.Add(p, f.offset)) {
			return false
		}
	}
	if missing := fp.all &^ seen; missing != 0 {
		if missing&fp.req != 0 {
			return false
		}
		if missing &= fp.def; missing != 0 {
			for i := range c.fields {
				if missing&(1<<i) != 0 {
					f := &c.fields[i]
					if f.c.fromValue(unsafe.Add(p, f.offset), f.def) != nil {
						return false
					}
				}
			}
		}
	}
	return true
}

// skipScalar skips the value of an unknown key when it is a scalar or a
// string, checked as the general path checks it.
func (d *fastDecoder) skipScalar() bool {
	start := d.off
	ib, arg, ok := d.head()
	if !ok {
		return false
	}
	switch ib >> 5 {
	case 0, 1:
		return arg <= math.MaxInt64
	case 2:
		d.off = start
		_, ok := d.text(2)
		return ok
	case 3:
		d.off = start
		b, ok := d.text(3)
		return ok && validText(b)
	case 7:
		switch ib & 0x1f {
		case 20, 21, 22, 23, 25, 26, 27:
			return true
		}
	}
	return false
}

// value reads the next item into the zero value at p of plan c.
func (d *fastDecoder) value(c *codec, p unsafe.Pointer) bool {
	switch c.kind {
	case cBool:
		if d.off >= len(d.data) {
			return false
		}
		switch d.data[d.off] {
		case 0xf4:
		case 0xf5:
			*(*bool)(p) = true
		default:
			return false
		}
		d.off++
		return true
	case cInt, cUint:
		i, ok := d.integer(c)
		if !ok {
			return false
		}
		storeInt(p, c.size, i)
		return true
	case cFloat32, cFloat64:
		f, ok := d.float(c)
		if !ok {
			return false
		}
		if c.kind == cFloat32 {
			*(*float32)(p) = float32(f)
		} else {
			*(*float64)(p) = f
		}
		return true
	case cString:
		b, ok := d.text(3)
		if !ok || !validText(b) {
			return false
		}
		*(*string)(p) = d.stringOf(b)
		return true
	case cBytes:
		b, ok := d.text(2)
		if !ok {
			return false
		}
		c := make([]byte, len(b))
		copy(c, b)
		*(*[]byte)(p) = c
		return true
	case cStruct:
		n, ok := d.mapHead()
		return ok && d.structBody(c, p, n)
	case cPtr:
		if d.off < len(d.data) && (d.data[d.off] == 0xf6 || d.data[d.off] == 0xf7) {
			d.off++
			return true
		}
		n, ok := d.mapHead()
		if !ok {
			return false
		}
		np := reflect.New(c.elem.rtype).UnsafePointer()
		if !d.structBody(c.elem, np, n) {
			return false
		}
		*(*unsafe.Pointer)(p) = np
		return true
	case cSlice:
		n, ok := d.count(4, 1)
		if !ok || c.checkSliceSize(n) != nil {
			return false
		}
		data := c.makeSlice(n)
		for i := 0; i < n; i++ {
			if !d.value(c.elem, unsafe.Add(data, uintptr(i)*c.elem.size)) {
				return false
			}
		}
		*(*sliceHeader)(p) = sliceHeader{data, n, n}
		return true
	}
	return false
}

// stringOf returns b, a part of the input, as a string.
func (d *fastDecoder) stringOf(b []byte) string {
	if !d.share || len(b) == 0 {
		return string(b)
	}
	if d.str == "" {
		d.str = string(d.data)
	}
	off := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) - uintptr(unsafe.Pointer(unsafe.SliceData(d.data))))
	return d.str[off : off+len(b)]
}

// integer reads an integer for plan c: an integer, or a float that holds
// one, within c's range.
func (d *fastDecoder) integer(c *codec) (int64, bool) {
	if d.off >= len(d.data) {
		return 0, false
	}
	ib, arg, ok := d.head()
	if !ok {
		return 0, false
	}
	var i int64
	switch ib >> 5 {
	case 0:
		i = int64(arg)
	case 1:
		i = int64(^arg)
	case 7:
		f, ok := floatOf(ib, arg)
		if !ok {
			return 0, false
		}
		i, fe := c.intFromFloat(f)
		return i, fe == nil
	default:
		return 0, false
	}
	return i, arg <= math.MaxInt64 && i >= c.min && i <= c.max
}

// float reads a number for plan c: a float, or an integer a float64 holds
// exactly.
func (d *fastDecoder) float(c *codec) (float64, bool) {
	ib, arg, ok := d.head()
	if !ok {
		return 0, false
	}
	var f float64
	var fe *fieldError
	switch ib >> 5 {
	case 0, 1:
		if arg > math.MaxInt64 {
			return 0, false
		}
		i := int64(arg)
		if ib>>5 == 1 {
			i = int64(^arg)
		}
		f, fe = c.floatFromInt(i)
	case 7:
		if f, ok = floatOf(ib, arg); !ok {
			return 0, false
		}
		f, fe = c.checkFloat32(f)
	default:
		return 0, false
	}
	return f, fe == nil
}

// floatOf is the float whose head is (ib, arg).
func floatOf(ib byte, arg uint64) (float64, bool) {
	switch ib {
	case 0xf9:
		return cbor.Float16To64(uint16(arg)), true
	case 0xfa:
		return float64(math.Float32frombits(uint32(arg))), true
	case 0xfb:
		return math.Float64frombits(arg), true
	}
	return 0, false
}
