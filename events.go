package hotmod

import (
	"context"
	"log/slog"
	"sync"
)

// Subscribe returns a channel that receives every lifecycle event from now
// on, in order, and a function that ends the subscription. Events are queued
// for a slow reader, never dropped and never blocking the registry. The
// channel is closed by cancel or by Close.
func (r *Registry) Subscribe() (events <-chan Event, cancel func()) {
	return r.events.subscribe()
}

// emit logs e and hands it to every subscriber; r.mu is held, so events are
// emitted in the order the transitions happened.
func (r *Registry) emit(e Event) {
	if e.Kind == EventRollout {
		r.auditRollout(e)
		r.events.publish(e)
		return
	}
	level := slog.LevelInfo
	attrs := []slog.Attr{
		slog.String("module", e.Module), slog.String("version", e.Version),
		slog.String("transport", string(e.Transport)), slog.String("from", e.From.String()),
		slog.String("to", e.To.String()),
	}
	if e.Artifact != "" {
		attrs = append(attrs, slog.String("artifact", e.Artifact))
	}
	if e.Err != nil {
		level = slog.LevelWarn
		if e.To == StateFailed {
			level = slog.LevelError
		}
		attrs = append(attrs, slog.String("reason", e.Err.Error()))
	} else if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason))
	}
	r.cfg.logger.LogAttrs(context.Background(), level, "module "+e.To.String(), attrs...)
	r.events.publish(e)
}

// eventHub fans events out to subscribers, each with an unbounded queue
// drained by its own goroutine.
type eventHub struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	mu    sync.Mutex
	queue []Event
	wake  chan struct{}
	done  chan struct{}
	once  sync.Once
	out   chan Event
}

func (h *eventHub) subscribe() (<-chan Event, func()) {
	s := &subscriber{wake: make(chan struct{}, 1), done: make(chan struct{}), out: make(chan Event)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.out)
		return s.out, func() {}
	}
	if h.subs == nil {
		h.subs = map[*subscriber]struct{}{}
	}
	h.subs[s] = struct{}{}
	h.mu.Unlock()
	go s.pump()
	return s.out, func() {
		h.mu.Lock()
		delete(h.subs, s)
		h.mu.Unlock()
		s.stop()
	}
}

func (h *eventHub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs {
		s.mu.Lock()
		s.queue = append(s.queue, e)
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// close ends every subscription once its queued events are delivered.
func (h *eventHub) close() {
	h.mu.Lock()
	h.closed = true
	subs := h.subs
	h.subs = nil
	h.mu.Unlock()
	for s := range subs {
		s.mu.Lock()
		s.queue = append(s.queue, Event{end: true})
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *subscriber) stop() { s.once.Do(func() { close(s.done) }) }

func (s *subscriber) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		q := s.queue
		s.queue = nil
		s.mu.Unlock()
		for _, e := range q {
			if e.end {
				return
			}
			select {
			case s.out <- e:
			case <-s.done:
				return
			}
		}
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
	}
}
