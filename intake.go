package hotmod

import (
	"os"

	"github.com/hotmod/hotmod/sdk"
)

// checkSize refuses an artifact larger than WithMaxArtifactSize allows,
// from its size alone: none of its bytes are read.
func (r *Registry) checkSize(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return sdk.Errorf(sdk.CodeIncompatible, "%s: %v", path, err)
	}
	if limit := r.cfg.maxArtifactSize; fi.Size() > limit {
		return sdk.Errorf(sdk.CodeIncompatible,
			"%s is %d bytes, more than the %d an artifact may have: it is not read; raise the limit (hotmod serve --max-artifact-size, hotmod.WithMaxArtifactSize) if it is meant to be this large",
			path, fi.Size(), limit)
	}
	return nil
}
