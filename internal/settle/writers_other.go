//go:build !linux

package settle

// OpenForWriting cannot tell here: known is always false, and files settle
// by holding still for Blind.
func OpenForWriting(path string) (open, known bool) { return false, false }
