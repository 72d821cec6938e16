package wasm

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// DefaultCacheLimit is the default bound of the compilation cache: 1 GiB,
// about 30–50 entries of 20–33 MB.
const DefaultCacheLimit int64 = 1 << 30

// cacheBound keeps the bytes of compiled code under root within limit:
// wazero's file cache never removes an entry, and each is tens of MB.
//
// wazero keeps one file per compiled module, named by a hash of the
// module's bytes and settings; a file's modification time is when it was
// last used, as the loader touches the entries of every version it loads.
// After each load, while the files under root add up to more than limit,
// the least recently used one goes — never one that a loaded version uses
// (the next load of it would compile again). Files of other wazero
// versions (an upgrade leaves its predecessor's directory) count and go
// first, being old.
type cacheBound struct {
	root   string
	limit  int64 // <= 0: none
	logger *slog.Logger

	mu     sync.Mutex // one sweep at a time
	warned bool       // the entries in use alone exceed limit: said once
}

// keepCache touches the cache entries of i's code (its tier's, and the
// interruptible one its manifest was read from), so that they count as the
// most recently used, records them as in use, and trims the cache.
func (l *Loader) keepCache(i *Instance, data []byte) {
	var entries []string
	for _, e := range []*engine{l.engines[TierInterruptible], i.eng} {
		if p := entryOf(e.dir, data, e.tier == TierInterruptible); p != "" && !slices.Contains(entries, p) {
			now := time.Now()
			_ = os.Chtimes(p, now, now)
			entries = append(entries, p)
		}
	}
	l.mu.Lock()
	i.entries = entries
	l.mu.Unlock()
	l.cache.sweep(l.entriesInUse())
}

// entriesInUse returns the cache files of every loaded version.
func (l *Loader) entriesInUse() map[string]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]bool{}
	for i := range l.instances {
		for _, p := range i.entries {
			out[p] = true
		}
	}
	return out
}

// entryOf returns the file under dir where wazero keeps the code it
// compiled from data, or "" when there is none. wazero (v1.x, the wazevo
// compiler) names it sha256(ID ‖ "WAZEVO" ‖ CPU features as 8 bytes, little
// endian), where ID = sha256(data ‖ ensureTermination), in the directory
// wazero-<version>-<arch>-<os>. The CPU feature word is a few flag bits,
// so the candidates are tried. If a wazero upgrade names entries otherwise,
// none is found: the entries are then bounded by their age alone (and
// TestCacheEntryFound says so).
func entryOf(dir string, data []byte, ensureTermination bool) string {
	dirs, _ := filepath.Glob(filepath.Join(dir, "wazero-*"))
	if len(dirs) == 0 {
		return ""
	}
	h := sha256.New()
	h.Write(data)
	if ensureTermination {
		h.Write([]byte{1})
	} else {
		h.Write([]byte{0})
	}
	id := h.Sum(nil)
	var cpu [8]byte
	for features := uint64(0); features < maxCPUFeatureWord; features++ {
		binary.LittleEndian.PutUint64(cpu[:], features)
		k := sha256.New()
		k.Write(id)
		k.Write([]byte("WAZEVO"))
		k.Write(cpu[:])
		name := hex.EncodeToString(k.Sum(nil))
		for _, d := range dirs {
			p := filepath.Join(d, name)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p
			}
		}
	}
	return ""
}

// maxCPUFeatureWord bounds the CPU feature words tried by entryOf: wazero
// sets bits 0–2 on amd64 and bit 3 on arm64.
const maxCPUFeatureWord = 16

type cacheFile struct {
	path string
	size int64
	used time.Time
}

// sweep removes the least recently used files under root, not in inUse,
// until what is left fits the limit.
func (c *cacheBound) sweep(inUse map[string]bool) {
	if c.limit <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var files []cacheFile
	var total int64
	_ = filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isEntryName(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.Mode().IsRegular() {
			return nil
		}
		files = append(files, cacheFile{p, fi.Size(), fi.ModTime()})
		total += fi.Size()
		return nil
	})
	if total <= c.limit {
		return
	}
	slices.SortFunc(files, func(a, b cacheFile) int { return a.used.Compare(b.used) })
	removed, freed := 0, int64(0)
	for _, f := range files {
		if total <= c.limit {
			break
		}
		if inUse[f.path] {
			continue
		}
		if err := os.Remove(f.path); err != nil && !os.IsNotExist(err) {
			c.logger.Warn("wasm compilation cache: cannot remove an entry", "path", f.path, "error", err)
			continue
		}
		total -= f.size
		removed++
		freed += f.size
	}
	if removed > 0 {
		c.logger.Info("wasm compilation cache trimmed", "dir", c.root, "removed", removed,
			"freed_bytes", freed, "kept_bytes", total, "limit_bytes", c.limit)
	}
	if total > c.limit && !c.warned {
		c.warned = true
		c.logger.Warn("wasm compilation cache: the code of the loaded versions alone is over the limit; raise the limit (WithWasmCacheLimit, --wasm-cache-limit)",
			"dir", c.root, "bytes", total, "limit_bytes", c.limit)
	}
}

// isEntryName reports whether name is a complete entry of wazero's file
// cache (64 hex digits), not a file it is still writing.
func isEntryName(name string) bool {
	if len(name) != 2*sha256.Size {
		return false
	}
	return strings.Trim(name, "0123456789abcdef") == ""
}
