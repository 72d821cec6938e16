package wasm

import (
	"context"
	"log/slog"
	"strings"

	"github.com/hotmod/hotmod/internal/logcap"
)

// maxPending is the most guest output kept before it is logged; more is
// logged at once, in pieces.
const maxPending = 64 << 10

// tailLines is how many of its last stderr lines a guest keeps, and
// headLines how many of the lines that explain a crash ("panic: …",
// "fatal error: …"), for the message of a crash.
const (
	tailLines = 8
	headLines = 4
)

// headPrefixes start the lines Go's runtime explains a crash with.
var headPrefixes = []string{"panic:", "fatal error:", "runtime:", "error:"}

// output turns what a guest writes on stdout or stderr into slog records
// with the module's name: what one call (or one start, or one hook) wrote
// becomes one record, so a panic's stack, or a fatal error's dump of every
// goroutine, stays together. A guest is used by one goroutine at a time and
// wazero writes on the calling goroutine, so output needs no lock.
type output struct {
	logger *slog.Logger
	level  slog.Level
	stream string
	attrs  []slog.Attr
	buf    []byte
	keep   bool            // keep tail and heads (stderr)
	tail   []string        // the last lines, oldest first
	heads  []string        // the last lines with a headPrefixes prefix
	limit  *logcap.Limiter // the module's budget, shared by its guests and streams
}

func newOutput(logger *slog.Logger, stream string, level slog.Level, keep bool, limit *logcap.Limiter, attrs ...slog.Attr) *output {
	return &output{logger: logger, level: level, stream: stream, attrs: attrs, keep: keep, limit: limit}
}

func (o *output) Write(p []byte) (int, error) {
	o.buf = append(o.buf, p...)
	if len(o.buf) >= maxPending {
		o.flush()
	}
	return len(p), nil
}

// flush logs what was written since the last flush as one record.
func (o *output) flush() {
	if len(o.buf) == 0 {
		return
	}
	s := strings.TrimRight(string(o.buf), "\r\n")
	o.buf = o.buf[:0]
	if o.keep {
		for _, line := range strings.Split(s, "\n") {
			o.tail = keepLast(o.tail, line, tailLines)
			for _, p := range headPrefixes {
				if strings.HasPrefix(line, p) {
					o.heads = keepLast(o.heads, line, headLines)
					break
				}
			}
		}
	}
	if s == "" || !o.logger.Enabled(context.Background(), o.level) {
		return
	}
	attrs := append([]slog.Attr{slog.String("stream", o.stream)}, o.attrs...)
	o.limit.Log(o.logger, len(s), o.attrs, func() {
		o.logger.LogAttrs(context.Background(), o.level, s, attrs...)
	})
}

func keepLast(list []string, s string, n int) []string {
	if len(list) == n {
		list = append(list[:0], list[1:]...)
	}
	return append(list, s)
}

// headline returns what explains a crash: the lines Go's runtime starts a
// panic or a fatal error with, or else the last lines; "" when the guest
// wrote nothing.
func (o *output) headline() string {
	o.flush()
	if len(o.heads) > 0 {
		return strings.Join(o.heads, "; ")
	}
	return strings.Join(o.tail[max(0, len(o.tail)-3):], "; ")
}

// contains reports whether a kept line contains s.
func (o *output) contains(s string) bool {
	for _, l := range append(o.heads, o.tail...) {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
