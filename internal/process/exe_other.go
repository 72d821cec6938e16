//go:build !linux

package process

import "os"

func privateCopy(dir, name string, src *os.File) (executable, error) {
	return keptCopy(dir, name, src)
}
