package signing

import (
	"crypto/rand"
	"path/filepath"
	"testing"
)

// BenchmarkVerify is the cost a load pays under WithTrustedKeys: reading
// and hashing an artifact the size of a typical native plugin, and checking
// its signature.
func BenchmarkVerify(b *testing.B) {
	dir := b.TempDir()
	if _, err := GenerateKey(filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")); err != nil {
		b.Fatal(err)
	}
	key, err := ReadSecretKey(filepath.Join(dir, "k.key"), "")
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(filepath.Join(dir, "k.pub"))
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 16<<20)
	rand.Read(data)
	p := filepath.Join(dir, "m.so")
	writeSigned(b, key, p, data)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(p); err != nil {
			b.Fatal(err)
		}
	}
}
