package logcap_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hotmod/hotmod/internal/logcap"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	l := logcap.New(1000, 3000)
	attrs := []slog.Attr{slog.String("module", "m")}
	logged := 0
	for range 10 {
		l.Log(logger, 1000, attrs, func() { logged++ })
	}
	if logged != 3 {
		t.Fatalf("%d of 10 records of 1000 bytes logged with a burst of 3000", logged)
	}
	time.Sleep(1100 * time.Millisecond) // refills 1000 bytes
	l.Log(logger, 500, attrs, func() { logged++ })
	if logged != 4 || !strings.Contains(buf.String(), "dropped_bytes=7000 dropped_records=7 limit_bytes_per_second=1000 module=m") {
		t.Fatalf("after a refill: %d logged, log:\n%s", logged, buf.String())
	}
	buf.Reset()
	l.Log(logger, 5000, attrs, func() { logged++ })
	l.Flush(logger, attrs)
	if logged != 4 || !strings.Contains(buf.String(), "dropped_bytes=5000 dropped_records=1") {
		t.Fatalf("Flush: %d logged, log:\n%s", logged, buf.String())
	}
	buf.Reset()
	l.Flush(logger, attrs)
	if buf.Len() != 0 {
		t.Errorf("Flush with nothing dropped logged %s", buf.String())
	}
}
