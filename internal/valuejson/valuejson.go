// Package valuejson is the JSON form of hotmod's value model (nil, bool,
// int64, float64, string, []byte, []any, map[string]any), in both
// directions. The HTTP API (internal/server) and the process transport's
// text mode (internal/process) both use it, so the two speak the same JSON.
//
// The rules:
//
//   - an integer is written as an integer literal (no fraction, no
//     exponent) and an integer literal is read back as an int64; a literal
//     outside int64 is an error (or, with Decoder.BigIntegersAsFloats, a
//     float64);
//   - a float always has a fraction or an exponent ("2.0", "1e+21",
//     "1e-7"), written as encoding/json writes floats otherwise, and any
//     number with a fraction or an exponent is read back as a float64; NaN
//     and ±Inf cannot be written (JSON has no literals for them) and are
//     not read;
//   - []byte is written as a standard base64 string (JSON has no bytes; it
//     reads back as a string);
//   - strings are UTF-8: invalid UTF-8 is refused both ways; U+2028 and
//     U+2029 are escaped so the output is also valid JavaScript, and <, >
//     and & are left alone;
//   - object keys are written sorted, so the same value is always the same
//     text; an object that repeats a key is refused;
//   - nesting is limited to sdk.MaxDepth, as sdk.CheckParams counts it.
//
// Why not encoding/json? It writes float64(2) as "2", which every reader
// takes for an integer; it reads every number as a float64 (or a
// json.Number to convert by hand); and it accepts duplicate keys and
// invalid UTF-8 silently.
package valuejson

import (
	"errors"
	"io"
	"strconv"
	"strings"
)

// The kinds of Error. Test for them with errors.Is.
var (
	// ErrSyntax is text that is not JSON. An Error for text that ends in the
	// middle of a value is ErrSyntax and io.ErrUnexpectedEOF too.
	ErrSyntax = errors.New("malformed JSON")

	// ErrOutside is JSON, or a Go value, that the value model has no place
	// for: an integer outside int64, a float out of range, a repeated key, a
	// Go type outside the model, invalid UTF-8 in a Go string.
	ErrOutside = errors.New("outside the value model")

	// ErrTooDeep is a value nested deeper than the limit. It is ErrOutside
	// too.
	ErrTooDeep = errors.New("nested too deep")

	// ErrNonFinite is a NaN or an infinity, which JSON cannot write. It is
	// ErrOutside too.
	ErrNonFinite = errors.New("NaN or infinity")
)

// Error is a value that cannot be written, or text that cannot be read.
type Error struct {
	// Offset is, when decoding, the position of the byte where the problem
	// was found, counting the first byte as 1 (as encoding/json's
	// SyntaxError.Offset does); past the end of the text it is len+1. It
	// is 0 when encoding.
	Offset int
	// Path names the value at fault the way sdk.CheckParams does
	// ("items[2].price"); "" is the top-level value.
	Path string
	// Msg says what is wrong, without the offset or path.
	Msg string
	// Value is the Go value that cannot be written, when encoding.
	Value any

	kinds []error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Offset > 0 {
		b.WriteString("byte ")
		b.WriteString(strconv.Itoa(e.Offset))
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the kinds of the error: ErrSyntax, ErrOutside, ErrTooDeep,
// ErrNonFinite, io.ErrUnexpectedEOF.
func (e *Error) Unwrap() []error { return e.kinds }

var (
	kindSyntax    = []error{ErrSyntax}
	kindEOF       = []error{ErrSyntax, io.ErrUnexpectedEOF}
	kindOutside   = []error{ErrOutside}
	kindTooDeep   = []error{ErrOutside, ErrTooDeep}
	kindNonFinite = []error{ErrOutside, ErrNonFinite}
)

// member is the path of the member k of the value at path.
func member(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// element is the path of the element i of the value at path.
func element(path string, i int) string {
	return path + "[" + strconv.Itoa(i) + "]"
}

// within prefixes the path of err, an *Error found inside a member or an
// element, with where that member or element is: prefix is a key ("a") or
// an index ("[2]"). Decoding builds paths this way, as errors return, so
// that the path costs nothing unless there is an error.
func within(err error, prefix string) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	switch {
	case e.Path == "":
		e.Path = prefix
	case e.Path[0] == '[':
		e.Path = prefix + e.Path
	default:
		e.Path = prefix + "." + e.Path
	}
	return err
}
