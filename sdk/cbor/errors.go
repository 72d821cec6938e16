package cbor

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// DecodeError is the error of every decoding failure: where in the input it
// happened and what was wrong, e.g.
//
//	cbor: offset 17: map key is an unsigned integer; keys must be text strings
//
// Offset is the byte offset of the data item (or head) at fault. Callers that
// cross a module boundary wrap it with the bad-params code; this package
// does not import the sdk.
type DecodeError struct {
	Offset int
	Msg    string
}

func (e *DecodeError) Error() string {
	return "cbor: offset " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// EncodeError is the error of every encoding failure: the path to the value
// at fault, starting with "value", and what was wrong, e.g.
//
//	cbor: value.items[2]: time.Time is not in the value model
type EncodeError struct {
	Path string
	Msg  string
}

func (e *EncodeError) Error() string {
	return "cbor: " + e.Path + ": " + e.Msg
}

func errAt(off int, format string, args ...any) *DecodeError {
	return &DecodeError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// pathError is an encoding error on its way up: segments are collected in
// reverse while unwinding, so that the hot path never builds a path.
type pathError struct {
	segs []string // innermost first
	msg  string
}

func (e *pathError) Error() string { return e.msg }

func encErr(format string, args ...any) error {
	return &pathError{msg: fmt.Sprintf(format, args...)}
}

func withSeg(err error, seg string) error {
	if pe, ok := err.(*pathError); ok {
		pe.segs = append(pe.segs, seg)
	}
	return err
}

func finishEncErr(err error) error {
	pe, ok := err.(*pathError)
	if !ok {
		return err
	}
	var b strings.Builder
	b.WriteString("value")
	for i := len(pe.segs) - 1; i >= 0; i-- {
		b.WriteString(pe.segs[i])
	}
	return &EncodeError{Path: b.String(), Msg: pe.msg}
}

// describe names the data item whose head is ib, arg, with an article, in
// CBOR's words.
func describe(ib byte, arg uint64) string {
	switch ib >> 5 {
	case majorUint:
		return "an unsigned integer"
	case majorNint:
		return "a negative integer"
	case majorBytes:
		return "a byte string"
	case majorText:
		return "a text string"
	case majorArray:
		return "an array"
	case majorMap:
		return "a map"
	case majorTag:
		return "tag " + strconv.FormatUint(arg, 10)
	}
	switch ib & 0x1f {
	case simpleFalse, simpleTrue:
		return "a bool"
	case simpleNull:
		return "null"
	case simpleUndefined:
		return "undefined"
	case aiFloat16, aiFloat32, aiFloat64:
		return "a float"
	case aiIndefinite:
		return "a break"
	}
	return "simple value " + strconv.FormatUint(arg, 10)
}

// tagNames names the registered tags people are likely to send, for errors.
var tagNames = map[uint64]string{
	0:     "date/time string",
	1:     "epoch date/time",
	2:     "unsigned bignum",
	3:     "negative bignum",
	4:     "decimal fraction",
	5:     "bigfloat",
	21:    "expected base64url",
	22:    "expected base64",
	23:    "expected base16",
	24:    "encoded CBOR data item",
	32:    "URI",
	33:    "base64url",
	34:    "base64",
	36:    "MIME message",
	37:    "UUID",
	258:   "set",
	259:   "map with non-string keys",
	1004:  "full date",
	55799: "self-described CBOR",
}

func tagError(off int, tag uint64) error {
	if name, ok := tagNames[tag]; ok {
		return errAt(off, "tag %d (%s) is not in the value model", tag, name)
	}
	return errAt(off, "tag %d is not in the value model", tag)
}

func intRangeError(off int, major byte, arg uint64) error {
	if major == majorUint {
		return errAt(off, "integer %d does not fit in int64", arg)
	}
	// The value is -1-arg; -(arg+1) overflows uint64 only for arg = 2^64-1.
	s := "18446744073709551616"
	if arg != ^uint64(0) {
		s = strconv.FormatUint(arg+1, 10)
	}
	return errAt(off, "integer -%s does not fit in int64", s)
}

func utf8Error(off int, b []byte) error {
	i := 0
	for i < len(b) {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		i += n
	}
	return errAt(off, "text string is not valid UTF-8 (at byte %d of the string)", i)
}
