package wire

import (
	"fmt"
	"strings"
	"time"
)

// The environment a host starts a child with.
const (
	// EnvProcess is "1" in a child started by a host: it serves the
	// protocol on stdin and stdout.
	EnvProcess = "HOTMOD_PROCESS"
	// EnvVersions is the range of protocol versions the host speaks,
	// "LOW-HIGH" (see ParseVersions).
	EnvVersions = "HOTMOD_PROCESS_VERSIONS"
	// EnvEncodings lists the encodings the host accepts, comma-separated,
	// in order of preference (see ParseEncodings).
	EnvEncodings = "HOTMOD_PROCESS_ENCODINGS"
)

// The protocol versions this package speaks. Version 2 adds calls from a
// child to other modules, through the host.
const (
	MinVersion = 1
	MaxVersion = 2
)

// Limits.
const (
	// MaxFrame bounds one message in either encoding: a CBOR frame's body,
	// a JSON line without its newline.
	MaxFrame = 16 << 20
	// MaxID is the largest id: integers up to 2^53 are exact in every
	// language's JSON.
	MaxID = 1<<53 - 1
	// MaxDepth bounds the nesting of a JSON message's envelope and values
	// (the value model's 64 levels, plus the envelope's own two).
	MaxDepth = 66
)

// Encoding is how messages after the handshake are written.
type Encoding string

const (
	// CBOR: a frame is a 4-byte big-endian length N (1 ≤ N ≤ MaxFrame)
	// and N bytes holding one CBOR map.
	CBOR Encoding = "cbor"
	// JSON: one JSON object per line, ending in '\n'.
	JSON Encoding = "json"
)

// Kind is a message's type, its "t".
type Kind uint8

// The kinds of message. Call and Cancel go both ways (a child's calls to
// other modules: version 2); Result and Error answer a call, init, check,
// ping or close (from the child) or a child's call (from the host).
const (
	Unknown Kind = iota // a "t" this package does not know: Message.Type holds it
	Call
	Cancel
	Ping
	Init
	Check
	Close
	Result
	Error
)

var kindNames = [...]string{"", "call", "cancel", "ping", "init", "check", "close", "result", "error"}

// String is the kind's name on the wire ("" for Unknown).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

func kindOf(t []byte) Kind {
	switch string(t) {
	case "call":
		return Call
	case "cancel":
		return Cancel
	case "ping":
		return Ping
	case "init":
		return Init
	case "check":
		return Check
	case "close":
		return Close
	case "result":
		return Result
	case "error":
		return Error
	}
	return Unknown
}

// Raw is one value in a message's encoding: CBOR bytes or JSON text. A nil
// Raw is an absent value (or null).
type Raw []byte

// Message is one message, in either direction. Raw values and strings that
// a Decoder returns do not alias its input but for the Raw values, which
// alias the frame.
type Message struct {
	Kind Kind
	// Type is the "t" as it came, when Kind is Unknown.
	Type string
	ID   int64
	// HasID: the message had an "id" (every known kind needs one).
	HasID bool

	// Method is a call's method.
	Method string
	// Params are a call's params (a map; nil for none).
	Params Raw
	// Config is an init's configuration (a map; nil for null).
	Config Raw
	// Result is a result's value (a map; nil for none).
	Result Raw
	// Err is an error's {"code", "message"}.
	Err *ErrorBody

	// Timeout is a call's "timeout_us": what was left of its deadline
	// when it was sent; 0 for none.
	Timeout time.Duration
	// TraceParent is a host's call's W3C trace context, or "".
	TraceParent string

	// Parent (the id of the host's request the call is made for) and
	// Target (the module or capability to call) are a child's call's
	// (version 2). HasParent says whether "parent" came.
	Parent    int64
	HasParent bool
	Target    string
}

// ErrorBody is an error reply's {"code", "message"}. Code is hotmod's error
// code (as package sdk names them), or whatever the other side sent.
type ErrorBody struct {
	Code    string
	Message string
}

// ProtocolError is a message, or a stream of them, that breaks the
// protocol. A host replaces a child that sends one; a child stops.
type ProtocolError struct{ Msg string }

func (e *ProtocolError) Error() string { return "protocol error: " + e.Msg }

// Errorf makes a ProtocolError.
func Errorf(format string, args ...any) *ProtocolError {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// TooLargeError is a message that Append refused: over MaxFrame.
type TooLargeError struct {
	Kind Kind
	Size int // the message's size in bytes, without framing
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("the %s message of %d bytes is over the process protocol's limit of %d bytes", e.Kind, e.Size, MaxFrame)
}

// TimeoutMicros is d in whole microseconds, rounded up, so that a call
// never gets less time than it has: a message's "timeout_us".
func TimeoutMicros(d time.Duration) int64 {
	return int64((d + time.Microsecond - 1) / time.Microsecond)
}

// valid is s as valid UTF-8, without a copy when it is.
func valid(s string) string { return strings.ToValidUTF8(s, "\uFFFD") }
