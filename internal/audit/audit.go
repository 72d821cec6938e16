// Package audit records who changed what runs: every load, refusal,
// unload and quarantine, and every admin action of the API, is logged once
// as a record with the message "audit", the action and its actor (a token's
// name, or "directory" for a change the watched directory made).
package audit

import (
	"context"
	"log/slog"
)

// Actors that are not tokens.
const (
	Directory = "directory" // the watcher, following the module directory
	Unknown   = "unknown"   // a change made with no actor in its context
)

// Message is the message of every audit record, so one filter finds them.
const Message = "audit"

type ctxKey struct{}

// WithActor returns ctx saying that actor is making the change.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, ctxKey{}, actor)
}

// Actor is the actor of ctx, or Unknown.
func Actor(ctx context.Context) string {
	if a, ok := ctx.Value(ctxKey{}).(string); ok && a != "" {
		return a
	}
	return Unknown
}

// Log records that the actor of ctx did action, with attrs saying what to.
func Log(ctx context.Context, logger *slog.Logger, action string, attrs ...slog.Attr) {
	LogAs(ctx, logger, Actor(ctx), action, attrs...)
}

// LogAs records that actor did action.
func LogAs(ctx context.Context, logger *slog.Logger, actor, action string, attrs ...slog.Attr) {
	all := make([]slog.Attr, 0, len(attrs)+2)
	all = append(all, slog.String("action", action), slog.String("actor", actor))
	logger.LogAttrs(ctx, slog.LevelInfo, Message, append(all, attrs...)...)
}
