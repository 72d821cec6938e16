//go:build wasm || amd64 || arm64 || 386

package word

import "unsafe"

// LE64 returns b's first 8 bytes as a little-endian word: one load on these
// little-endian architectures, which all load from any address; cheap
// enough for its callers to inline.
func LE64(b []byte) uint64 {
	_ = b[7]
	return *(*uint64)(unsafe.Pointer(unsafe.SliceData(b)))
}
