package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/sdk"
)

// Daemon is what `hotmod serve`'s worker process adds to the API:
//
//	GET  /readyz                 200 {"status":"ready","worker":PID} once the worker serves and the
//	                             directory's first load is done; 503 {"status":"starting","reason":…} before
//	POST /v1/recycle             202: a new worker starts; the current one stops once it is ready
//	GET  /v1/quarantine          {"quarantined": [QuarantineEntry…]}
//	POST /v1/quarantine/lift     body {"target": "SHA256-PREFIX|PATH"} → {"lifted": [QuarantineEntry…]}
type Daemon struct {
	// Ready reports whether the worker is ready, and if not, why.
	Ready func() (bool, string)
	// Recycle asks the supervisor for a new worker.
	Recycle func(reason string) error
}

// WithDaemon serves the daemon's endpoints beside api (the handler New
// returns).
func WithDaemon(api http.Handler, reg *hotmod.Registry, d Daemon, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) { // role: read (a probe, like /healthz)
		if ok, why := d.Ready(); !ok {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "reason": why, "worker": os.Getpid()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "worker": os.Getpid()})
	})
	mux.HandleFunc("/readyz", methodNotAllowed("GET"))
	mux.HandleFunc("POST /v1/recycle", func(w http.ResponseWriter, _ *http.Request) { // role: admin
		if err := d.Recycle("asked over the API"); err != nil {
			writeError(w, http.StatusInternalServerError, sdk.Errorf(sdk.CodeInternal, "%v", err))
			return
		}
		logger.Info("recycle requested over the API")
		writeJSON(w, http.StatusAccepted, map[string]any{"status": "recycling", "worker": os.Getpid(),
			"message": "a new worker is starting; this one stops accepting once it is ready, and exits when its calls are done"})
	})
	mux.HandleFunc("/v1/recycle", methodNotAllowed("POST"))
	mux.HandleFunc("GET /v1/quarantine", func(w http.ResponseWriter, _ *http.Request) { // role: read
		list, err := reg.Quarantined()
		if err != nil {
			writeError(w, http.StatusInternalServerError, sdk.Errorf(sdk.CodeInternal, "%v", err))
			return
		}
		if list == nil {
			list = []hotmod.QuarantineEntry{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"quarantined": list})
	})
	mux.HandleFunc("/v1/quarantine", methodNotAllowed("GET"))
	mux.HandleFunc("POST /v1/quarantine/lift", func(w http.ResponseWriter, r *http.Request) { // role: admin
		var body struct {
			Target string `json:"target"`
		}
		data, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err == nil {
			err = json.Unmarshal(data, &body)
		}
		if err != nil || body.Target == "" {
			writeError(w, http.StatusBadRequest, sdk.Errorf(sdk.CodeBadParams, `the body must be {"target": "SHA256-PREFIX or PATH"}`))
			return
		}
		lifted, err := reg.LiftQuarantine(body.Target)
		if err != nil {
			writeError(w, http.StatusNotFound, sdk.AsError(err))
			return
		}
		logger.Info("quarantine lifted", "target", body.Target, "lifted", len(lifted))
		writeJSON(w, http.StatusOK, map[string]any{"lifted": lifted})
	})
	mux.HandleFunc("/v1/quarantine/lift", methodNotAllowed("POST"))
	mux.Handle("/", api)
	return mux
}
