package hotmod

import (
	"context"

	"github.com/hotmod/hotmod/sdk"
)

// Call is Invoke with Go types: in (a struct with `hotmod` field tags, see
// sdk.Func) is encoded to params, and the result is decoded into Out.
//
//	q, err := hotmod.Call[Quote](ctx, reg, "pricing@^1", "quote", QuoteParams{SKU: "tea", Qty: 3})
//
// In and Out may also be map[string]any, the value model's object: such
// params are passed as they are and such a result is returned as it came.
//
// A result that does not fit Out is an ErrIncompatible error: the module's
// contract is not the one the caller was built against.
func Call[Out, In any](ctx context.Context, r *Registry, ref, method string, in In) (Out, error) {
	var zero Out
	params, ok := any(in).(map[string]any)
	if !ok {
		var err error
		if params, err = sdk.Encode(in); err != nil {
			return zero, err
		}
	}
	res, err := r.Invoke(ctx, ref, method, params)
	if err != nil {
		return zero, err
	}
	if m, ok := any(&zero).(*map[string]any); ok {
		*m = res
		return zero, nil
	}
	out, err := sdk.Decode[Out](res)
	if err != nil {
		return zero, sdk.Errorf(sdk.CodeIncompatible, "%s.%s: the result does not fit %T: %s", ref, method, zero, sdk.AsError(err).Message)
	}
	return out, nil
}
