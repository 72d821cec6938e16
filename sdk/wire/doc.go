// Package wire is the hotmod process protocol: the messages a host and a
// module in a child process exchange over the child's stdin and stdout,
// their framing in each encoding, and the handshake line. Both ends use it:
// the host's process transport (internal/process in the hotmod module) and
// the Go SDK's child side (sdk.Main). docs/process-protocol.md in the
// repository is the specification; this package is its one implementation
// in Go.
//
// A message is a [Message]: a type ([Kind]), an id, and the keys its type
// needs. Values (a call's params, an init's configuration, a result) stay
// encoded: a [Raw] holds one value in the message's encoding, so each side
// decodes it where it knows what it wants (the SDK straight into a typed
// method's struct, the host into the value model) and encodes it once.
//
//   - [Append] appends a message's whole frame (CBOR: a 4-byte big-endian
//     length, then a map) or line (JSON: one object and a newline).
//   - [Reader] reads frames or lines, within [MaxFrame], and resumes after
//     a read deadline that struck in the middle of one.
//   - [Decoder] turns a frame or line into a Message and checks what the
//     protocol requires of it; anything else is a [*ProtocolError].
//   - [Hello], [ParseVersions], [ParseEncodings]: the handshake.
//
// The package depends on the standard library and sdk/cbor only, so the
// SDK module keeps no dependencies.
package wire
