package server

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/hotmod/hotmod/internal/valuejson"
	"github.com/hotmod/hotmod/sdk"
)

// example is the params object error messages suggest.
const example = `{"name":"Ada"}`

// paramsDecoder reads request bodies. Unlike the process protocol, the API
// reads an integer literal outside int64 as a float64 (see the package doc):
// a JavaScript client cannot tell 1e20 from 100000000000000000000.
var paramsDecoder = valuejson.Decoder{BigIntegersAsFloats: true}

// DecodeParams reads a request body as a call's params: one JSON object, or
// an empty body for no params. Numbers become int64 when written as integer
// literals that fit (1, -7), float64 otherwise (1.5, 1e3, 2.0,
// 99999999999999999999), nested too. Objects may not repeat a key. Errors
// are bad_params and say what to send instead.
func DecodeParams(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	v, n, err := paramsDecoder.Decode(body)
	if err != nil {
		return nil, badParams(err)
	}
	if rest := bytes.TrimSpace(body[n:]); len(rest) > 0 {
		return nil, sdk.Errorf(sdk.CodeBadParams,
			"unexpected data after the params object at byte %d: send exactly one JSON object, e.g. %s", n, example)
	}
	params, ok := v.(map[string]any)
	if !ok {
		return nil, sdk.Errorf(sdk.CodeBadParams,
			"params must be a JSON object, not %s: send e.g. %s, or an empty body for no params", jsonKind(v), example)
	}
	return params, nil
}

// badParams turns a decoding error into the bad_params error the API
// answers with.
func badParams(err error) error {
	var e *valuejson.Error
	if !errors.As(err, &e) {
		return sdk.Errorf(sdk.CodeBadParams, "malformed JSON: %v: send a JSON object of params, e.g. %s", err, example)
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return sdk.Errorf(sdk.CodeBadParams, "malformed JSON: the body ends in the middle of a value: send a complete JSON object, e.g. %s", example)
	case errors.Is(err, valuejson.ErrSyntax):
		return sdk.Errorf(sdk.CodeBadParams, "malformed JSON at byte %d: %s: send a JSON object of params, e.g. %s", e.Offset, e.Msg, example)
	case errors.Is(err, valuejson.ErrTooDeep):
		// Counted from the params' members, as sdk.CheckParams counts.
		return sdk.Errorf(sdk.CodeBadParams, "%s: nested deeper than %d levels", e.Path, sdk.MaxDepth)
	case e.Path == "":
		return sdk.Errorf(sdk.CodeBadParams, "%s", e.Msg)
	}
	return sdk.Errorf(sdk.CodeBadParams, "%s: %s", e.Path, e.Msg)
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, float64:
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// encodeResult writes a method's result as JSON followed by a newline. A
// nil map is written as {}. It refuses what sdk.CheckParams refuses, with
// the same messages, and NaN, ±Inf and invalid UTF-8. See the package doc
// for how numbers and []byte are written.
//
// Why not encoding/json? It writes float64(2) as "2", which a client reads
// back as an integer; the value model keeps the two apart.
func encodeResult(out map[string]any) ([]byte, error) {
	b, err := valuejson.Append(make([]byte, 0, 256), out, "")
	if errors.Is(err, valuejson.ErrNonFinite) {
		return nil, fmt.Errorf("%w: return a string or null instead", err)
	}
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
