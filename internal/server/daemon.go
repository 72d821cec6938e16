package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"

	"github.com/hotmod/hotmod"
	"github.com/hotmod/hotmod/internal/audit"
	"github.com/hotmod/hotmod/internal/auth"
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

// WithDaemon serves the daemon's endpoints (see Daemon) beside the API's,
// behind the same checks.
func WithDaemon(reg *hotmod.Registry, d Daemon) Option {
	return WithEndpoints(func(handle Handle, logger *slog.Logger) {
		handle("GET /readyz", auth.RoleNone, func(w http.ResponseWriter, _ *http.Request) { // a probe, like /healthz
			if ok, why := d.Ready(); !ok {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "reason": why, "worker": os.Getpid()})
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "worker": os.Getpid()})
		})
		handle("/readyz", auth.RoleNone, methodNotAllowed("GET"))
		handle("POST /v1/recycle", auth.RoleAdmin, func(w http.ResponseWriter, r *http.Request) {
			if err := d.Recycle("asked over the API"); err != nil {
				writeError(w, http.StatusInternalServerError, sdk.Errorf(sdk.CodeInternal, "%v", err))
				return
			}
			logger.InfoContext(r.Context(), "recycle requested over the API", "actor", audit.Actor(r.Context()))
			writeJSON(w, http.StatusAccepted, map[string]any{"status": "recycling", "worker": os.Getpid(),
				"message": "a new worker is starting; this one stops accepting once it is ready, and exits when its calls are done"})
		})
		handle("/v1/recycle", auth.RoleAdmin, methodNotAllowed("POST"))
		handle("GET /v1/quarantine", auth.RoleRead, func(w http.ResponseWriter, _ *http.Request) {
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
		handle("/v1/quarantine", auth.RoleRead, methodNotAllowed("GET"))
		handle("POST /v1/quarantine/lift", auth.RoleAdmin, func(w http.ResponseWriter, r *http.Request) {
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
			logger.InfoContext(r.Context(), "quarantine lifted", "target", body.Target, "lifted", len(lifted), "actor", audit.Actor(r.Context()))
			writeJSON(w, http.StatusOK, map[string]any{"lifted": lifted})
		})
		handle("/v1/quarantine/lift", auth.RoleAdmin, methodNotAllowed("POST"))
	})
}
