package chain

import (
	"context"
	"sync/atomic"

	"github.com/hotmod/hotmod/sdk"
)

// Handle keeps the sdk.Host a transport's instance got at Init, for the
// calls its module makes to other modules. The zero value holds none.
type Handle struct{ p atomic.Pointer[sdk.Host] }

// Bind keeps the host ctx carries (sdk.HostFrom); a ctx without one keeps
// the host an earlier Init gave.
func (h *Handle) Bind(ctx context.Context) {
	if x := sdk.HostFrom(ctx); x != nil {
		h.p.Store(&x)
	}
}

// Host returns the host kept, or nil.
func (h *Handle) Host() sdk.Host {
	if p := h.p.Load(); p != nil {
		return *p
	}
	return nil
}

// NoHost is the error of a call from the module of man to target.method
// made without a host: undeclared, saying what to do.
func NoHost(man sdk.Manifest, target, method string) error {
	if len(man.Requires) == 0 {
		return sdk.Errorf(sdk.CodeUndeclared,
			"module %s@%s declared no requirements, so it cannot call %s.%s: declare the modules it calls with Requires (sdk.New(…).Requires(%q, \"^1\")) or the capabilities with RequiresCapability",
			man.Name, man.Version, target, method, target)
	}
	return sdk.Errorf(sdk.CodeUndeclared,
		"module %s@%s called %s.%s, but its host gave it no handle for calls to other modules (the context of Init carried no sdk.Host): load it through a hotmod registry, or pass sdk.WithHost(ctx, h) to Init",
		man.Name, man.Version, target, method)
}
