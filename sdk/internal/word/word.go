// Package word reads bytes as 64-bit words, for decoders that run as wasm
// guests: there the runtime compares and checks bytes one at a time, and
// every iteration of a loop may exit to the host (a loop header), so a
// short key is compared, and a short string checked to be ASCII, with a
// load or two instead.
package word

import (
	"math"
	"unicode/utf8"
)

// Load returns the 8 bytes of b at off as a little-endian word, the bytes
// past the end of b as zeros.
func Load(b []byte, off int) uint64 {
	if off+8 <= len(b) {
		return LE64(b[off:])
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

// Mask has the low n bytes set (all of them for n >= 8).
func Mask(n int) uint64 {
	if n >= 8 {
		return math.MaxUint64
	}
	return 1<<(8*uint(n)) - 1
}

const highBits = 0x8080808080808080

// ValidUTF8 reports whether b is valid UTF-8, without a loop when b is
// ASCII and at most 16 bytes long.
func ValidUTF8(b []byte) bool {
	switch n := len(b); {
	case n == 0:
		return true
	case n <= 8:
		return Load(b, 0)&highBits == 0 || utf8.Valid(b)
	case n <= 16:
		return (LE64(b)|Load(b, 8))&highBits == 0 || utf8.Valid(b)
	}
	return utf8.Valid(b)
}

// ASCIIAt reports whether data[off:off+n] is ASCII, for n <= 8 when data
// holds the 8 bytes from off, with one load; false means "not known to
// be": check with ValidUTF8.
func ASCIIAt(data []byte, off, n int) bool {
	return n <= 8 && off+8 <= len(data) && LE64(data[off:])<<(64-8*uint(n))&highBits == 0
}
