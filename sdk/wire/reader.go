package wire

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Reader reads frames (CBOR) or lines (JSON) from a stream. It is not safe
// for concurrent use. An error from the stream is returned as it is (io.EOF
// between messages); a read that fails with a timeout (a read deadline,
// which may strike in the middle of a message) can be retried: Next
// resumes where it stopped. Framing that breaks the protocol is a
// *ProtocolError.
type Reader struct {
	r    *bufio.Reader
	enc  Encoding
	name string // the stream's name in errors: "stdout", "stdin"

	// CBOR: the frame being read, got bytes of it so far (header included).
	hdr  [4]byte
	got  int
	size int
	body []byte // reused

	// JSON: the line being read, when it spans reads.
	partial []byte
}

// keepBuffer bounds the buffer a Reader keeps between messages: the odd
// huge message is not kept alive.
const keepBuffer = 64 << 10

// NewReader reads messages in enc from r; name names the stream in errors
// ("stdout", "stdin").
func NewReader(r *bufio.Reader, enc Encoding, name string) *Reader {
	return &Reader{r: r, enc: enc, name: name}
}

// Buffered reports how many bytes are buffered and not read yet: more than
// zero means that another message is (at least partly) there.
func (r *Reader) Buffered() int { return r.r.Buffered() }

// Next returns the next message's body: a CBOR frame without its header, or
// a JSON line without its newline. It is valid until the next call.
func (r *Reader) Next() ([]byte, error) {
	if r.enc == JSON {
		return r.nextLine()
	}
	return r.nextFrame()
}

func (r *Reader) nextFrame() ([]byte, error) {
	for r.got < 4 {
		n, err := r.r.Read(r.hdr[r.got:])
		r.got += n
		if r.got == 4 {
			size := binary.BigEndian.Uint32(r.hdr[:])
			if size == 0 || size > MaxFrame {
				r.got = 0
				return nil, Errorf("a frame header announces %d bytes (1 to %d allowed; the bytes were %q%s)", size, MaxFrame, r.hdr[:], TextHint(r.hdr[:]))
			}
			r.size = int(size)
			if cap(r.body) < r.size {
				r.body = make([]byte, r.size)
			}
			break
		}
		if err != nil {
			if err == io.EOF && r.got > 0 {
				return nil, Errorf("%s ended in the middle of a frame header", r.name)
			}
			return nil, err
		}
	}
	body := r.body[:r.size]
	for r.got < 4+r.size {
		n, err := r.r.Read(body[r.got-4:])
		r.got += n
		if r.got == 4+r.size {
			break
		}
		if err != nil {
			if err == io.EOF {
				return nil, Errorf("%s ended in the middle of a frame of %d bytes", r.name, r.size)
			}
			return nil, err
		}
	}
	r.got = 0
	if r.size > keepBuffer {
		r.body = nil // body stays valid: only the Reader lets go of it
	}
	return body, nil
}

func (r *Reader) nextLine() ([]byte, error) {
	for {
		frag, err := r.r.ReadSlice('\n')
		if err == nil {
			line := frag[:len(frag)-1]
			if len(r.partial) > 0 {
				r.partial = append(r.partial, line...)
				line = r.partial
				if cap(r.partial) > keepBuffer {
					r.partial = nil
				} else {
					r.partial = r.partial[:0]
				}
			}
			if len(line) > MaxFrame {
				return nil, Errorf("a line longer than %d bytes (it starts %q)", MaxFrame, clip(line, 80))
			}
			return line, nil
		}
		r.partial = append(r.partial, frag...)
		switch {
		case len(r.partial) > MaxFrame:
			return nil, Errorf("a line longer than %d bytes (it starts %q)", MaxFrame, clip(r.partial, 80))
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && len(r.partial) > 0:
			return nil, Errorf("%s ended in the middle of a line: %q", r.name, clip(r.partial, 80))
		}
		return nil, err
	}
}

// ReadLine reads a line of at most limit bytes (the handshake) and returns
// it without its newline; the slice is valid until the next read of r.
func ReadLine(r *bufio.Reader, limit int, name string) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err == nil {
		return line[:len(line)-1], nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			return nil, Errorf("%s ended in the middle of a line: %q", name, clip(line, 80))
		}
		return nil, err
	}
	buf := append([]byte(nil), line...)
	for {
		if len(buf) > limit {
			return nil, Errorf("a line longer than %d bytes (it starts %q)", limit, clip(buf, 80))
		}
		line, err = r.ReadSlice('\n')
		buf = append(buf, line...)
		switch err {
		case nil:
			return buf[:len(buf)-1], nil
		case bufio.ErrBufferFull:
		case io.EOF:
			return nil, Errorf("%s ended in the middle of a line: %q", name, clip(buf, 80))
		default:
			return nil, err
		}
	}
}

// TextHint suggests the likeliest cause of text where a message should be:
// the module printing to stdout. It is "" when b does not look like text.
func TextHint(b []byte) string {
	if len(b) == 0 || b[0] == '{' {
		return ""
	}
	for _, c := range b[:min(len(b), 4)] {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return ": text; does the module print to stdout? Only the protocol may go there: log to stderr"
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
