package sdk

import (
	"math"
	"reflect"
	"unsafe"

	"github.com/hotmod/hotmod/sdk/cbor"
	"github.com/hotmod/hotmod/sdk/internal/word"
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

// fastKey is a field's wire name as a CBOR text string, head included.
type fastKey struct {
	enc []byte
}

func newFastKey(name string) fastKey { return fastKey{enc: cbor.AppendString(nil, name)} }

// keySlot is a slot of a struct's key table: an encoded key of at most
// maxSlotKey bytes as little-endian words (zero past its end), and its field.
type keySlot struct {
	w     [3]uint64
	n     uint8 // the encoded key's length; 0 for an empty slot
	field uint16
}

// maxSlotKey is the longest encoded key the table holds: a one-byte head and
// a name of up to 23 bytes. Longer names go through the general lookup.
const maxSlotKey = 24

// keyHash spreads a key's first word over the table (Fibonacci hashing).
const keyHash = 0x9E3779B97F4A7C15

// maxKeyTableBits bounds a struct's key table at 4096 slots.
const maxKeyTableBits = 12

// fastPlan is what the fast path knows of a struct beyond its codec.
type fastPlan struct {
	table  []keySlot // the fields' keys, hashed: a key is in its slot or the next
	shift  uint      // 64 - log2(len(table))
	all    uint64    // a bit per field
	req    uint64    // the required fields
	def    uint64    // the fields with a default
	decode bool      // no map or any inside: the fast path decodes it
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
	fp := &fastPlan{decode: true}
	for i := range c.fields {
		f := &c.fields[i]
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
	if !fp.buildTable(c.fields) {
		return
	}
	c.fast = fp
}

// buildTable hashes the fields' keys into the smallest table (from twice
// as many slots as fields) where each key is in its slot or the next.
func (fp *fastPlan) buildTable(fields []fieldCodec) bool {
	for bits := uint(1); bits <= maxKeyTableBits; bits++ {
		if 1<<bits < 2*len(fields) {
			continue
		}
		table := make([]keySlot, 1<<bits)
		shift := 64 - bits
		placed := true
		for i := range fields {
			enc := fields[i].key.enc
			if len(enc) > maxSlotKey {
				continue // found by the general lookup
			}
			var pad [maxSlotKey]byte
			copy(pad[:], enc)
			slot := keySlot{w: [3]uint64{word.LE64(pad[:]), word.LE64(pad[8:]), word.LE64(pad[16:])}, n: uint8(len(enc)), field: uint16(i)}
			h := slot.w[0] * keyHash >> shift
			switch {
			case table[h].n == 0:
				table[h] = slot
			case table[(h+1)&(1<<bits-1)].n == 0:
				table[(h+1)&(1<<bits-1)] = slot
			default:
				placed = false
			}
			if !placed {
				break
			}
		}
		if placed {
			fp.table, fp.shift = table, shift
			return true
		}
	}
	return false
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

// match returns the field whose key is next in data at off, or -1 when it
// is not in the table (not a short text string, an unknown key, an alias, a
// long name).
func (fp *fastPlan) match(data []byte, off int) int {
	if off >= len(data) || data[off]-0x60 >= 24 {
		return -1
	}
	n := int(data[off]-0x60) + 1
	var w uint64
	if off+8 <= len(data) {
		w = word.LE64(data[off:])
	} else {
		w = word.Load(data, off)
	}
	w &= word.Mask(n)
	mask := uint64(len(fp.table) - 1)
	h := w * keyHash >> fp.shift
	e := &fp.table[h]
	if e.w[0] != w || int(e.n) != n {
		if e = &fp.table[(h+1)&mask]; e.w[0] != w || int(e.n) != n {
			return -1
		}
	}
	if n > 8 && !fp.rest(e, data, off, n) {
		return -1
	}
	return int(e.field)
}

// rest compares the bytes of a key past its first 8.
func (fp *fastPlan) rest(e *keySlot, data []byte, off, n int) bool {
	if off+n > len(data) {
		return false
	}
	if word.Load(data, off+8)&word.Mask(n-8) != e.w[1] {
		return false
	}
	return n <= 16 || word.Load(data, off+16)&word.Mask(n-16) == e.w[2]
}

// structBody reads n map entries into the zero struct at p.
func (d *fastDecoder) structBody(c *codec, p unsafe.Pointer, n int) bool {
	fp := c.fast
	var seen uint64
	for i := 0; i < n; i++ {
		fi := fp.match(d.data, d.off)
		if fi >= 0 {
			d.off += int(d.data[d.off]-0x60) + 1
		}
		if fi < 0 {
			key, ok := d.text(3)
			if !ok {
				return false
			}
			r, known := c.lookup(key)
			if !known {
				if !word.ValidUTF8(key) || !d.skipScalar() {
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
		return ok && word.ValidUTF8(b)
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
		if d.off < len(d.data) && d.data[d.off] < 24 && int64(d.data[d.off]) <= c.max { // 0…23, the head alone
			storeInt(p, c.size, int64(d.data[d.off]))
			d.off++
			return true
		}
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
		var b []byte
		if off := d.off; off < len(d.data) && d.data[off]-0x60 < 24 { // shorter than 24 bytes: inline
			end := off + 1 + int(d.data[off]-0x60)
			if end > len(d.data) {
				return false
			}
			b, d.off = d.data[off+1:end], end
			if !word.ASCIIAt(d.data, off+1, len(b)) && !word.ValidUTF8(b) {
				return false
			}
		} else {
			var ok bool
			if b, ok = d.text(3); !ok || !word.ValidUTF8(b) {
				return false
			}
		}
		if d.share && len(b) > 0 {
			if d.str == "" {
				d.str = string(d.data)
			}
			start := d.off - len(b)
			*(*string)(p) = d.str[start:d.off]
		} else {
			*(*string)(p) = string(b)
		}
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
