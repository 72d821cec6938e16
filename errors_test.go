package hotmod_test

import (
	"errors"
	"testing"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// Every code the README and the package doc name has a sentinel in package
// hotmod, so a library user needs no import of sdk to test errors.
func TestEveryCodeHasASentinel(t *testing.T) {
	for code, sentinel := range map[sdk.Code]error{
		sdk.CodeUnknownModule: hotmod.ErrUnknownModule,
		sdk.CodeUnknownMethod: hotmod.ErrUnknownMethod,
		sdk.CodeBadParams:     hotmod.ErrBadParams,
		sdk.CodeTimeout:       hotmod.ErrTimeout,
		sdk.CodePanic:         hotmod.ErrPanic,
		sdk.CodeNotActive:     hotmod.ErrNotActive,
		sdk.CodeIncompatible:  hotmod.ErrIncompatible,
		sdk.CodeInternal:      hotmod.ErrInternal,
		sdk.CodeModule:        hotmod.ErrModule,
		sdk.CodeOverloaded:    hotmod.ErrOverloaded,
		sdk.CodeCircuitOpen:   hotmod.ErrCircuitOpen,
		sdk.CodeUndeclared:    hotmod.ErrUndeclared,
		sdk.CodeCallDepth:     hotmod.ErrCallDepth,
		sdk.CodeInUse:         hotmod.ErrInUse,
	} {
		err := sdk.Errorf(code, "some %s failure", code)
		if !errors.Is(err, sentinel) {
			t.Errorf("errors.Is(%s error, its sentinel) = false", code)
		}
		if code != sdk.CodeInternal && errors.Is(err, hotmod.ErrInternal) {
			t.Errorf("a %s error matches ErrInternal", code)
		}
	}
}
