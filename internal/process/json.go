package process

import (
	"errors"

	"github.com/hotmod/hotmod/internal/valuejson"
	"github.com/hotmod/hotmod/sdk"
)

// The text mode speaks the value model's JSON of package valuejson (see
// docs/process-protocol.md, "Numbers and bytes in JSON"): integers stay
// integers, a float always has a fraction or an exponent, []byte travels as
// base64, an integer literal outside int64 is refused (never read as a
// float), and so are duplicate keys, invalid UTF-8, NaN and ±Inf.

// appendJSON appends v as JSON. path names v in errors ("params.items[2]").
// A value that cannot be sent is a bad_params error: the caller's params
// (or the module's config) are at fault. depth is always 0: the limit is
// sdk.MaxDepth below v, as sdk.CheckParams counts it. (The unnamed int is
// the depth v sits at, which its callers always give as 0.)
func appendJSON(b []byte, v any, path string, _ int) ([]byte, error) {
	b, err := valuejson.Append(b, v, path)
	if err != nil {
		var e *valuejson.Error
		if errors.Is(err, valuejson.ErrNonFinite) && errors.As(err, &e) {
			return nil, sdk.Errorf(sdk.CodeBadParams, "%s: %v cannot be sent to a module that speaks JSON (JSON has no NaN or infinities)", e.Path, e.Value)
		}
		return nil, sdk.Errorf(sdk.CodeBadParams, "%v", err)
	}
	return b, nil
}

// parseJSONObject reads data, one JSON object with optional white space
// around it, into a map. maxDepth counts the object itself as level 1.
func parseJSONObject(data []byte, maxDepth int) (map[string]any, error) {
	return valuejson.Decoder{MaxDepth: maxDepth}.DecodeObject(data)
}
