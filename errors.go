package hotmod

import "github.com/hotmod/hotmod/sdk"

// Error is the error type every failed call returns; its Code is the same on
// every transport and on the HTTP API.
type Error = sdk.Error

// Sentinel errors for errors.Is; each matches every Error with its code.
var (
	// ErrUnknownModule: no loaded module matches the name or version range.
	ErrUnknownModule = sdk.ErrUnknownModule
	// ErrUnknownMethod: the module has no such method.
	ErrUnknownMethod = sdk.ErrUnknownMethod
	// ErrBadParams: the params do not fit the method or the value model.
	ErrBadParams = sdk.ErrBadParams
	// ErrTimeout: the call's context expired before the module answered.
	ErrTimeout = sdk.ErrTimeout
	// ErrPanic: the module panicked; the host recovered and keeps serving.
	ErrPanic = sdk.ErrPanic
	// ErrNotActive: the version is loaded but not serving calls.
	ErrNotActive = sdk.ErrNotActive
	// ErrIncompatible: the artifact cannot be loaded by this host.
	ErrIncompatible = sdk.ErrIncompatible
	// ErrInternal: a failure inside hotmod itself.
	ErrInternal = sdk.ErrInternal
	// ErrModule: the module returned an error of its own.
	ErrModule = sdk.ErrModule
	// ErrOverloaded: the module's concurrency limit was reached; try again later.
	ErrOverloaded = sdk.ErrOverloaded
	// ErrCircuitOpen: the module failed repeatedly and is refusing calls until it is probed again.
	ErrCircuitOpen = sdk.ErrCircuitOpen
	// ErrUndeclared: a module called, through the host, a module or
	// capability it did not declare with Requires or RequiresCapability.
	ErrUndeclared = sdk.ErrUndeclared
	// ErrCallDepth: a chain of module-to-module calls went deeper than the
	// host allows (see WithCallDepth).
	ErrCallDepth = sdk.ErrCallDepth
	// ErrInUse: Unload refused a version an active module requires; use
	// Force to unload it anyway.
	ErrInUse = sdk.ErrInUse
)
