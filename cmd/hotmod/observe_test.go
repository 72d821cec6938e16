package main

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// JSON logs give durations in seconds, the way metrics do, not in integer
// nanoseconds; text logs keep Go's duration strings.
func TestLogDurations(t *testing.T) {
	for _, c := range []struct{ format, want string }{
		{"json", `"took":1.5`},
		{"text", "took=1.5s"},
	} {
		var buf bytes.Buffer
		logger, err := newLogger(&buf, c.format, "info")
		if err != nil {
			t.Fatal(err)
		}
		logger.Info("loaded", "module", "m", "version", "1.0.0", "took", 1500*time.Millisecond)
		if !bytes.Contains(buf.Bytes(), []byte(c.want)) {
			t.Errorf("%s log: %s, want %s", c.format, buf.String(), c.want)
		}
		if c.format == "json" && !json.Valid(bytes.TrimSpace(buf.Bytes())) {
			t.Errorf("not JSON: %s", buf.String())
		}
	}
}
