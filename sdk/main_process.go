//go:build !wasip1

package sdk

import "os"

// serveProcessIfAsked serves the process protocol when the host started the
// program as a process module (see Main).
func serveProcessIfAsked(m *Module) (code int, served bool) {
	if os.Getenv(processEnv) == "" {
		return 0, false
	}
	return serveProcess(m), true
}
