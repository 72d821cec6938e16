package auth

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/hotmod/hotmod/internal/statedir"
)

// A daemon that made or found its local admin token publishes it for the
// user who runs it: one file per address it listens on, mode 0600, in
// CredentialDir. The CLI, knowing only the address, finds it there. The
// file goes when the daemon stops cleanly.

// CredentialDir is where daemons publish their admin token: hotmod/daemons
// under the user's configuration directory ($XDG_CONFIG_HOME or
// ~/.config on Linux).
func CredentialDir() (string, error) {
	base, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding where to keep the daemon's credentials: %w", err)
	}
	return filepath.Join(base, "hotmod", "daemons"), nil
}

// CredentialPath is the file of the daemon at addr (host:port).
func CredentialPath(addr string) (string, error) {
	dir, err := CredentialDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, credentialName(addr)+".token"), nil
}

// credentialName turns host:port into a file name; "localhost" and the
// loopback and unspecified addresses of either IP family are one name, as
// a client of any of them reaches a daemon listening on any of them.
func credentialName(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		host, port = addr, ""
	}
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && (ip.IsLoopback() || ip.IsUnspecified())) {
		host = "local"
	}
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
				return r
			}
			return '_'
		}, s)
	}
	return clean(host) + "_" + clean(port)
}

// PublishCredential writes token for the daemon at addr and returns a
// function that removes the file again (unless another daemon has since
// replaced it).
func PublishCredential(addr, token string) (path string, remove func(), err error) {
	path, err = CredentialPath(addr)
	if err != nil {
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", nil, fmt.Errorf("publishing the admin token: %w", err)
	}
	if err := statedir.WriteAtomic(path, []byte(token+"\n"), 0o600); err != nil {
		return "", nil, fmt.Errorf("publishing the admin token: %w", err)
	}
	return path, func() {
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == token {
			_ = os.Remove(path)
		}
	}, nil
}

// ReadCredential is the token a daemon at addr published, or "" when there
// is none.
func ReadCredential(addr string) (string, error) {
	path, err := CredentialPath(addr)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
