package hotmod

import (
	"context"
	"log/slog"
	"runtime/debug"

	"github.com/hotmod/hotmod/internal/goroutines"
	"github.com/hotmod/hotmod/sdk"
)

// builtin is a module compiled into the host (Register).
type builtin struct {
	m      *sdk.Module
	logger *slog.Logger
	tag    goroutines.Tag // labels the goroutines the module starts
}

func newBuiltin(m *sdk.Module, logger *slog.Logger) *builtin {
	return &builtin{m: m, logger: logger, tag: goroutines.NewTag(m.Name() + "@" + m.Version())}
}

func (b *builtin) Manifest() sdk.Manifest { return b.m.Manifest() }
func (b *builtin) Sum() string            { return "" }

func (b *builtin) Invoke(ctx context.Context, method string, params map[string]any) (out map[string]any, err error) {
	saved := b.tag.Enter()
	defer func() {
		b.tag.Leave(saved)
		if p := recover(); p != nil {
			b.logger.Error("module panicked", "module", b.m.Name(), "version", b.m.Version(), "method", method, "panic", p, "stack", string(debug.Stack()))
			out, err = nil, sdk.Errorf(sdk.CodePanic, "%s.%s panicked: %v", b.m.Name(), method, p)
		}
	}()
	return b.m.Invoke(ctx, method, params)
}

func (b *builtin) Init(ctx context.Context, cfg map[string]any) error { return b.m.Init(ctx, cfg) }
func (b *builtin) Check(ctx context.Context) error                    { return b.m.Check(ctx) }
func (b *builtin) Close() error                                       { return b.m.Close() }
