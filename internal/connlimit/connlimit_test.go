package connlimit_test

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/connlimit"
)

// TestLimit: past the cap connections get reserve places, marked; past
// those they are closed at once; a closed connection frees its place.
func TestLimit(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimit.New(inner, 2)
	defer l.Close()
	accepted := make(chan net.Conn, 100)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	next := func() net.Conn {
		select {
		case c := <-accepted:
			return c
		case <-time.After(5 * time.Second):
			t.Fatal("no connection accepted")
			return nil
		}
	}
	var server []net.Conn
	for i := range 2 + connlimit.Reserve {
		dial()
		c := next()
		if reserved := connlimit.Reserved(connlimit.ConnContext(context.Background(), c)); reserved != (i >= 2) {
			t.Fatalf("connection %d: reserved %v", i, reserved)
		}
		server = append(server, c)
	}
	// Every place taken: the next is closed at once.
	over := dial()
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := over.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection past every place: read %v, want EOF", err)
	}
	if l.Refused() != 1 {
		t.Errorf("Refused() = %d", l.Refused())
	}
	// One normal place freed: the next connection is normal.
	server[0].Close()
	dial()
	if c := next(); connlimit.Reserved(connlimit.ConnContext(context.Background(), c)) {
		t.Errorf("a connection after one closed was reserved")
	}
}
