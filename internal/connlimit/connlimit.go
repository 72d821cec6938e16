// Package connlimit caps the connections a listener keeps open, with a few
// kept in reserve for health checks.
//
// golang.org/x/net/netutil.LimitListener stops accepting at its cap: new
// connections then wait in the kernel's backlog, a health check among them,
// so a daemon flooded with slow clients looks dead to its supervisor. This
// listener keeps accepting: past the cap a connection gets one of Reserve
// spare places, marked so the server answers only health checks on it
// (everything else 503, then closed); past those it is closed at once.
package connlimit

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"sync/atomic"
)

// Reserve is how many connections past the cap may be open at once to ask
// for health.
const Reserve = 16

// Listener is a net.Listener that keeps at most max connections (plus
// Reserve health-only ones) open.
type Listener struct {
	net.Listener
	normal, spare chan struct{}
	refused       atomic.Int64
}

// New caps ln at max open connections.
func New(ln net.Listener, max int) *Listener {
	return &Listener{Listener: ln, normal: make(chan struct{}, max), spare: make(chan struct{}, Reserve)}
}

// Refused is how many connections were closed at once, every place taken.
func (l *Listener) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection there is room for.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.normal <- struct{}{}:
			return &conn{Conn: c, slots: l.normal}, nil
		default:
		}
		select {
		case l.spare <- struct{}{}:
			return &conn{Conn: c, slots: l.spare, reserved: true}, nil
		default:
		}
		l.refused.Add(1)
		_ = c.Close()
	}
}

type conn struct {
	net.Conn
	slots    chan struct{}
	reserved bool
	once     sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.slots })
	return err
}

type ctxKey struct{}

// ConnContext is for http.Server.ConnContext: it marks the context of a
// reserve connection's requests.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	if t, ok := c.(*tls.Conn); ok {
		c = t.NetConn()
	}
	if lc, ok := c.(*conn); ok && lc.reserved {
		return context.WithValue(ctx, ctxKey{}, true)
	}
	return ctx
}

// Reserved reports whether ctx is a request on a reserve connection: one
// only health checks may use.
func Reserved(ctx context.Context) bool {
	r, _ := ctx.Value(ctxKey{}).(bool)
	return r
}
