package server

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/hotmod/hotmod/internal/auth"
	"github.com/hotmod/hotmod/sdk"
)

// TokenRequest is the body of POST /v1/tokens.
type TokenRequest struct {
	Name    string    `json:"name,omitempty"`
	Role    auth.Role `json:"role"`
	Modules []string  `json:"modules,omitempty"`
}

// TokenInfo is a token as the API shows it; Token, the secret, only in the
// answer that created it.
type TokenInfo struct {
	auth.Principal
	Created string `json:"created"`
	Token   string `json:"token,omitempty"`
}

func info(t auth.Token) TokenInfo {
	return TokenInfo{Principal: t.Principal, Created: t.Created.Format("2006-01-02T15:04:05Z")}
}

// noStore answers 404 when the server has no token store, and reports it.
func (s *api) noStore(w http.ResponseWriter) bool {
	if s.tokens != nil {
		return false
	}
	writeError(w, http.StatusNotFound, sdk.Errorf(CodeNotFound, "this server has no tokens: it was started without authentication"))
	return true
}

func (s *api) listTokens(w http.ResponseWriter, _ *http.Request) {
	if s.noStore(w) {
		return
	}
	list := []TokenInfo{}
	for _, t := range s.tokens.List() {
		list = append(list, info(t))
	}
	writeJSON(w, http.StatusOK, struct {
		Tokens []TokenInfo `json:"tokens"`
	}{list})
}

func (s *api) createToken(w http.ResponseWriter, r *http.Request) {
	if s.noStore(w) {
		return
	}
	var req TokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, sdk.Errorf(sdk.CodeBadParams,
			`the body must be {"role": "read"|"invoke"|"admin", "modules": [names], "name": "…"}: %v`, err))
		return
	}
	secret, t, err := s.tokens.Create(auth.Principal{Name: req.Name, Role: req.Role, Modules: req.Modules})
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, auth.ErrNameTaken) {
			status = http.StatusConflict
		}
		writeError(w, status, sdk.Errorf(sdk.CodeBadParams, "%v", err))
		return
	}
	attrs := []slog.Attr{slog.String("token", t.Name), slog.String("role", t.Role.String())}
	if len(t.Modules) > 0 {
		attrs = append(attrs, slog.String("modules", strings.Join(t.Modules, ",")))
	}
	s.audit(r, "token create", attrs...)
	out := info(t)
	out.Token = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *api) revokeToken(w http.ResponseWriter, r *http.Request) {
	if s.noStore(w) {
		return
	}
	name := r.PathValue("name")
	if err := s.tokens.Revoke(name); err != nil {
		status := http.StatusInternalServerError
		if errors.Is(err, auth.ErrNoSuch) {
			status = http.StatusNotFound
		}
		writeError(w, status, sdk.Errorf(CodeNotFound, "%v", err))
		return
	}
	s.audit(r, "token revoke", slog.String("token", name))
	writeJSON(w, http.StatusOK, map[string]string{"revoked": name})
}
