package wire

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Hello is the handshake: the child's first line on stdout, one line of
// JSON whatever the encoding that follows. It names the version and
// encoding the child picked and carries its manifest (in the JSON form
// sdk.ParseManifest reads), or says why the child cannot serve (Error).
type Hello struct {
	Hotmod   string          `json:"hotmod"` // always "process"
	Version  int             `json:"version,omitempty"`
	Encoding Encoding        `json:"encoding,omitempty"`
	Manifest json.RawMessage `json:"manifest,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// HelloMark is Hello.Hotmod.
const HelloMark = "process"

// AppendHello appends h as a line.
func AppendHello(b []byte, h Hello) ([]byte, error) {
	h.Hotmod = HelloMark
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding the handshake: %v", err)
	}
	return append(append(b, line...), '\n'), nil
}

// ParseHello reads a handshake line (without its newline). A line that is
// not one is an error that quotes it.
func ParseHello(line []byte) (Hello, error) {
	var h Hello
	if err := json.Unmarshal(line, &h); err != nil || h.Hotmod != HelloMark {
		return Hello{}, fmt.Errorf("its first line on stdout is %q, not the process protocol's hello", clip(line, 120))
	}
	return h, nil
}

// FormatVersions is the value of EnvVersions for a range.
func FormatVersions(lo, hi int) string { return strconv.Itoa(lo) + "-" + strconv.Itoa(hi) }

// ParseVersions reads a host's offer of versions, "LOW-HIGH" or "N"; ""
// offers version 1 (what hosts that did not say offered).
func ParseVersions(offer string) (lo, hi int, err error) {
	if offer == "" {
		return 1, 1, nil
	}
	l, h, found := strings.Cut(offer, "-")
	if !found {
		h = l
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(l))
	hi, err2 := strconv.Atoi(strings.TrimSpace(h))
	if err1 != nil || err2 != nil || lo < 1 || hi < lo {
		return 0, 0, fmt.Errorf("%s=%q is not a version range such as 1-2", EnvVersions, offer)
	}
	return lo, hi, nil
}

// ParseEncodings reads a host's offer of encodings ("cbor,json"); "" offers
// CBOR. Names it does not know are kept: the child picks among those it
// speaks.
func ParseEncodings(offer string) []Encoding {
	if offer == "" {
		return []Encoding{CBOR}
	}
	var encs []Encoding
	for _, e := range strings.Split(offer, ",") {
		if e = strings.TrimSpace(e); e != "" {
			encs = append(encs, Encoding(e))
		}
	}
	return encs
}
