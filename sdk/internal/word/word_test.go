package word

import (
	"testing"
	"unicode/utf8"
)

// FuzzWord checks the word functions against byte-at-a-time definitions.
func FuzzWord(f *testing.F) {
	for _, s := range []string{"", "a", "abcdefgh", "abcdefghijklmnop", "ü", "abcdefg\xff", "abcdefgh\xc3", "0123456789abcdefXYZ"} {
		f.Add([]byte(s), 0, len(s))
	}
	f.Fuzz(func(t *testing.T, b []byte, off, n int) {
		if got, want := ValidUTF8(b), utf8.Valid(b); got != want {
			t.Fatalf("ValidUTF8(%q) = %v, want %v", b, got, want)
		}
		if off < 0 || off > len(b) {
			return
		}
		var want uint64
		for i := 0; i < 8 && off+i < len(b); i++ {
			want |= uint64(b[off+i]) << (8 * i)
		}
		if got := Load(b, off); got != want {
			t.Fatalf("Load(%x, %d) = %x, want %x", b, off, got, want)
		}
		if n < 0 || off+n > len(b) {
			return
		}
		ascii := true
		for _, c := range b[off : off+n] {
			ascii = ascii && c < utf8.RuneSelf
		}
		if ASCIIAt(b, off, n) && !ascii {
			t.Fatalf("ASCIIAt(%x, %d, %d) is true, but the bytes are not ASCII", b, off, n)
		}
		if ascii && n <= 8 && off+8 <= len(b) && !ASCIIAt(b, off, n) {
			t.Fatalf("ASCIIAt(%x, %d, %d) is false for ASCII bytes it can load", b, off, n)
		}
	})
}
