package native

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/hotmod/hotmod/sdk"
)

// Instance is a module loaded from a native plugin. Its methods are safe for
// concurrent use. A panic on the calling goroutine inside the module comes
// back as an error with code panic (errors.Is(err, sdk.ErrPanic)) and the
// stack goes to the loader's logger; the host keeps serving.
type Instance struct {
	mod      *sdk.Module
	manifest sdk.Manifest
	sum      string
	logger   *slog.Logger
	tag      goroutines.Tag // labels the goroutines the module starts
}

var _ sdk.Invoker = (*Instance)(nil)

// Manifest returns what the module says of itself.
func (i *Instance) Manifest() sdk.Manifest { return i.manifest }

// Sum returns the sha256 (hex) of the artifact's bytes.
func (i *Instance) Sum() string { return i.sum }

// Invoke calls a method of the module.
func (i *Instance) Invoke(ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
	// One open-coded deferred closure: no allocation unless a panic happens.
	saved := i.tag.Enter()
	defer func() {
		i.tag.Leave(saved)
		if r := recover(); r != nil {
			out, err = nil, i.panicked(method, "", r)
		}
	}()
	return i.mod.Invoke(ctx, method, params)
}

// Init runs the module's OnInit hook with the host's configuration for it.
func (i *Instance) Init(ctx context.Context, config map[string]any) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = i.panicked("", "OnInit", r)
		}
	}()
	return i.mod.Init(ctx, config)
}

// Check runs the module's OnCheck self-test.
func (i *Instance) Check(ctx context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = i.panicked("", "OnCheck", r)
		}
	}()
	return i.mod.Check(ctx)
}

// Close runs the module's OnClose hook. The plugin itself stays mapped:
// Go plugins cannot be unloaded.
func (i *Instance) Close() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = i.panicked("", "OnClose", r)
		}
	}()
	return i.mod.Close()
}

// panicked logs a recovered panic with its stack and returns the error the
// caller gets: "greeter.hello panicked: …" for a method, "greeter's OnInit
// hook panicked: …" for a hook. It runs in the deferred function, so the
// stack still shows where the module panicked.
func (i *Instance) panicked(method, hook string, r any) error {
	name := i.manifest.Name
	where, attr := name+"."+method, slog.String("method", method)
	if hook != "" {
		where, attr = name+"'s "+hook+" hook", slog.String("hook", hook)
	}
	i.logger.Error("native module panicked",
		"module", name, "version", i.manifest.Version, attr,
		"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
	return &sdk.Error{Code: sdk.CodePanic, Message: fmt.Sprintf("%s panicked: %v", where, r)}
}
