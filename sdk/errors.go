package sdk

import (
	"context"
	"errors"
	"fmt"
)

// Code names a kind of failure. Codes are the same on every transport and on
// the HTTP API, so a host can branch on them whatever loaded the module.
type Code string

// The codes hotmod uses. A module may return any of them through Errorf.
const (
	CodeUnknownModule Code = "unknown_module" // no loaded module matches the name or range
	CodeUnknownMethod Code = "unknown_method" // the module has no such method
	CodeBadParams     Code = "bad_params"     // params are missing, mistyped or outside the value model
	CodeTimeout       Code = "timeout"        // the call's deadline passed
	CodePanic         Code = "panic"          // the module panicked during the call
	CodeNotActive     Code = "not_active"     // the version exists but is not routed (draining, failed, unloaded)
	CodeIncompatible  Code = "incompatible"   // the artifact cannot be loaded by this host
	CodeInternal      Code = "internal"       // a failure inside hotmod itself
	CodeModule        Code = "module_error"   // the module returned an error of its own
	CodeOverloaded    Code = "overloaded"     // the module already runs as many calls as the host allows; try again later
	CodeCircuitOpen   Code = "circuit_open"   // the module failed repeatedly; calls fail fast until a probe call succeeds
	CodeUndeclared    Code = "undeclared"     // a module called a module or capability it did not declare (see Requires)
	CodeCallDepth     Code = "call_depth"     // a chain of module-to-module calls went deeper than the host allows
	CodeInUse         Code = "in_use"         // the version cannot be unloaded: an active module requires it
)

// Error is the one error type that crosses a module boundary: a code and a
// human-readable message. Test for a kind with errors.Is and the sentinels:
//
//	if errors.Is(err, sdk.ErrTimeout) { … }
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

// Sentinels for errors.Is. Each matches every *Error with the same code.
var (
	// ErrUnknownModule: no loaded module matches the requested name or version range.
	ErrUnknownModule = &Error{Code: CodeUnknownModule}
	// ErrUnknownMethod: the module does not have the method.
	ErrUnknownMethod = &Error{Code: CodeUnknownMethod}
	// ErrBadParams: the params do not fit the method or the value model.
	ErrBadParams = &Error{Code: CodeBadParams}
	// ErrTimeout: the call's context expired before the module answered.
	ErrTimeout = &Error{Code: CodeTimeout}
	// ErrPanic: the module panicked; the host recovered and keeps serving.
	ErrPanic = &Error{Code: CodePanic}
	// ErrNotActive: the version is loaded but not serving calls.
	ErrNotActive = &Error{Code: CodeNotActive}
	// ErrIncompatible: the artifact cannot be loaded by this host; the message says why.
	ErrIncompatible = &Error{Code: CodeIncompatible}
	// ErrInternal: a failure inside hotmod itself.
	ErrInternal = &Error{Code: CodeInternal}
	// ErrModule: the module returned an error that carried no code of its own.
	ErrModule = &Error{Code: CodeModule}
	// ErrOverloaded: the host refused the call because the module already
	// runs as many calls at once as it is allowed; the module was not called.
	ErrOverloaded = &Error{Code: CodeOverloaded}
	// ErrCircuitOpen: the host refused the call because the module's recent
	// calls failed; the message says when a probe call will be let through.
	// The module was not called.
	ErrCircuitOpen = &Error{Code: CodeCircuitOpen}
	// ErrUndeclared: a module called, through the host, a module or
	// capability it did not declare with Requires or RequiresCapability.
	ErrUndeclared = &Error{Code: CodeUndeclared}
	// ErrCallDepth: a chain of module-to-module calls (a → b → a …) went
	// deeper than the host's limit; the message shows the chain.
	ErrCallDepth = &Error{Code: CodeCallDepth}
	// ErrInUse: the host refused to unload a version that an active module
	// requires; the message names it.
	ErrInUse = &Error{Code: CodeInUse}
)

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Message == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + e.Message
}

// Is reports whether target is an *Error with the same code and either no
// message (a sentinel) or the same message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code && (t.Message == "" || t.Message == e.Message)
}

// CodeOf returns the code that err carries: the code of the first *Error in
// its chain, timeout for context deadlines and cancellations, module_error for
// any other error, and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return CodeTimeout
	}
	return CodeModule
}

// AsError turns any error into an *Error, keeping the code it carries (see
// CodeOf) and its full message. It is how errors are made to cross a boundary.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) && e.Error() == err.Error() {
		return e
	}
	return &Error{Code: CodeOf(err), Message: err.Error()}
}
