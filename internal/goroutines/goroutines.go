// Package goroutines counts, per module version, the goroutines that code
// running in the host's own process (native plugins, builtin modules)
// starts and leaves running.
//
// Goroutines inherit the pprof labels of the goroutine that starts them. So
// a call into such a module runs with the label hotmod.version=name@version
// set on the calling goroutine (Tag.Enter, then Tag.Leave gives it back the
// labels it had), and every goroutine the
// module starts during the call carries that label for as long as it runs.
// A Sampler reads the goroutine profile now and then (Count), counts the
// goroutines of each label value, takes away the calls in flight (whose
// goroutines carry the label while they run), logs a warning when a
// version's count crosses Warn and reports a crossing of Limit so that the
// version can be quarantined.
//
// Setting the label costs four runtime calls per module call (read and set,
// set back) and no allocation: the label set is made once per version
// (NewTag).
package goroutines

import (
	"bufio"
	"bytes"
	"context"
	"runtime/pprof"
	"strconv"
	"unsafe"
)

// LabelKey is the pprof label that names the version a goroutine belongs to.
const LabelKey = "hotmod.version"

// Tag labels the goroutines that run one module version's code. The zero
// Tag does nothing.
type Tag struct{ labels unsafe.Pointer }

// Saved is the labels a goroutine had before Enter.
type Saved struct{ labels unsafe.Pointer }

// NewTag returns the tag of version ref ("name@version"); make it once per
// version, not per call.
func NewTag(ref string) Tag {
	ctx := pprof.WithLabels(context.Background(), pprof.Labels(LabelKey, ref))
	// The label set the runtime keeps for a goroutine is what
	// SetGoroutineLabels stores: store it on this goroutine, read it back,
	// and put this goroutine's own back.
	prev := getProfLabel()
	pprof.SetGoroutineLabels(ctx)
	t := Tag{getProfLabel()}
	setProfLabel(prev)
	return t
}

// Enter labels the calling goroutine with t: goroutines it starts from now
// on belong to t's version. Give what it returns to Leave.
func (t Tag) Enter() Saved {
	if t.labels == nil {
		return Saved{}
	}
	prev := getProfLabel()
	setProfLabel(t.labels)
	return Saved{prev}
}

// Leave gives the calling goroutine back the labels it had before Enter.
func (t Tag) Leave(s Saved) {
	if t.labels != nil {
		setProfLabel(s.labels)
	}
}

// The runtime's accessors of a goroutine's labels. SetGoroutineLabels
// finds the labels in a context (a lookup through every layer of it) and
// pprof.Do allocates two objects a call; these two calls cost a few
// nanoseconds. The runtime keeps both for packages outside the standard
// library ("Do not remove or change the type signature", go.dev/issue/67401).
//
//go:linkname getProfLabel runtime/pprof.runtime_getProfLabel
func getProfLabel() unsafe.Pointer

//go:linkname setProfLabel runtime/pprof.runtime_setProfLabel
func setProfLabel(labels unsafe.Pointer)

// Count reads the goroutine profile once and returns how many goroutines
// carry each value of LabelKey. It stops the world for a moment, longer the
// more goroutines there are: sample it, do not call it per request.
func Count() (map[string]int, error) {
	var buf bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&buf, 1); err != nil {
		return nil, err
	}
	return parse(&buf), nil
}

// labelPrefix starts the labels line of a stack in the text profile:
//
//	3 @ 0x43e 0x40a …
//	# labels: {"hotmod.version":"leaky@1.0.0"}
//	#	0x43e	main.f+0x1e	/src/main.go:12
var labelPrefix = []byte(`# labels: {`)

var quotedKey = []byte(strconv.Quote(LabelKey) + ":")

// parse counts goroutines by label value in a goroutine profile written
// with debug=1: each stack's line begins with its count, and the line after
// it holds its labels, if it has any.
func parse(r *bytes.Buffer) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	count := 0
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) > 0 && line[0] >= '0' && line[0] <= '9' {
			n, _, _ := bytes.Cut(line, []byte(" @"))
			count, _ = strconv.Atoi(string(n))
			continue
		}
		labels, ok := bytes.CutPrefix(line, labelPrefix)
		if !ok || count == 0 {
			continue
		}
		_, rest, ok := bytes.Cut(labels, quotedKey)
		if !ok {
			continue
		}
		q, err := strconv.QuotedPrefix(string(rest))
		if err != nil {
			continue
		}
		if v, err := strconv.Unquote(q); err == nil {
			out[v] += count
		}
		count = 0
	}
	return out
}
