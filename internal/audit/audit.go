// Package audit records who changed what runs: every load, refusal,
// unload and quarantine, and every admin action of the API, is logged once
// as a record with the message "audit", the action and its actor (a token's
// name, or "directory" for a change the watched directory made).
package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/hotmod/hotmod"
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

// Registry is the actor of changes the registry makes by itself: a version
// taken out of service while active (quarantined, or its process kept
// crashing). Shutdown is the actor of the unloads of a stopping daemon.
const (
	Registry = "registry"
	Shutdown = "shutdown"
)

// Follower logs the registry's changes of what runs; see Follow.
type Follower struct {
	done  chan struct{} // closed when the events are all logged
	mu    sync.Mutex
	actor string
	since time.Time
}

// Follow logs an audit record for every event that changes what runs —
// a version activated (load), refused (refuse), taken out of service while
// active (quarantine) or unloaded (unload) — until events is closed. In
// the daemon these come from the watched directory (actor "directory"),
// from the registry itself (quarantine: "registry"), or, after As, from
// whoever As names. Admin API actions are logged where they are made, with
// their token.
func Follow(events <-chan hotmod.Event, logger *slog.Logger) *Follower {
	f := &Follower{actor: Directory, done: make(chan struct{})}
	go f.run(events, logger)
	return f
}

// Wait returns once the events channel is closed (Registry.Close closes
// it) and every record is logged.
func (f *Follower) Wait() { <-f.done }

// As says that changes from now on (by their event's time) are actor's:
// Shutdown, before a stopping daemon unloads its modules.
func (f *Follower) As(actor string) {
	f.mu.Lock()
	f.actor, f.since = actor, time.Now()
	f.mu.Unlock()
}

func (f *Follower) actorAt(t time.Time) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.since.IsZero() && !t.Before(f.since) {
		return f.actor
	}
	return Directory
}

func (f *Follower) run(events <-chan hotmod.Event, logger *slog.Logger) {
	defer close(f.done)
	for e := range events {
		if e.Kind == hotmod.EventRollout {
			continue // the registry's own "rollout …" line; the API's names who asked
		}
		action, actor := "", f.actorAt(e.Time)
		switch {
		case e.To == hotmod.StateActive:
			action = "load"
		case e.To == hotmod.StateFailed && e.From == hotmod.StateActive:
			action, actor = "quarantine", Registry
		case e.To == hotmod.StateFailed:
			action = "refuse"
		case e.To == hotmod.StateUnloaded:
			action = "unload"
		default:
			continue
		}
		var attrs []slog.Attr
		if e.Module != "" {
			attrs = append(attrs, slog.String("module", e.Module), slog.String("version", e.Version))
		}
		if e.Artifact != "" {
			attrs = append(attrs, slog.String("artifact", e.Artifact))
		}
		if e.Err != nil {
			attrs = append(attrs, slog.String("reason", e.Err.Error()))
		}
		LogAs(context.Background(), logger, actor, action, attrs...)
	}
}
