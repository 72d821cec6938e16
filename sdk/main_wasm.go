//go:build wasip1

package sdk

// serveProcessIfAsked: a wasm guest is never a process module. Leaving the
// process server out of its binary keeps encoding/json (its handshake) out
// of every guest.
func serveProcessIfAsked(*Module) (code int, served bool) { return 0, false }
