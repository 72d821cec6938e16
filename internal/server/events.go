package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// KeepAlive is how often the event stream sends a comment line when there
// is no event, so that proxies and clients see the connection is alive.
const KeepAlive = 15 * time.Second

// events streams the registry's lifecycle events from now on as
// Server-Sent Events (text/event-stream), one per transition:
//
//	id: 1
//	event: lifecycle
//	data: {"time":"…","module":"pricing","version":"1.2.0","transport":"native",
//	       "from":"Validated","to":"Active","stages":[{"stage":"read","seconds":0.0004},…]}
//
// The stream ends when the client goes or the registry closes.
func (s *api) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w) // finds the Flusher under the access log's recorder
	events, cancel := s.reg.Subscribe()
	defer cancel()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": hotmod lifecycle events\n\n")
	if err := rc.Flush(); err != nil {
		return // this connection cannot stream
	}
	tick := time.NewTicker(KeepAlive)
	defer tick.Stop()
	var buf bytes.Buffer
	for id := 1; ; id++ {
		select {
		case e, ok := <-events:
			if !ok {
				return
			}
			buf.Reset()
			fmt.Fprintf(&buf, "id: %d\nevent: lifecycle\ndata: ", id)
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(e); err != nil { // ends with the newline of the data line
				return
			}
			buf.WriteByte('\n')
			if _, err := w.Write(buf.Bytes()); err != nil {
				return
			}
			_ = rc.Flush()
		case <-tick.C:
			id--
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			_ = rc.Flush()
		case <-r.Context().Done():
			return
		}
	}
}
