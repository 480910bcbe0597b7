package tunnel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
)

// Frame types of an exec stream. Each frame is a type byte, a big-endian uint32
// length and the payload.
const (
	FrameStdin    byte = 0
	FrameStdout   byte = 1
	FrameStderr   byte = 2
	FrameResize   byte = 3 // payload: width, height as two big-endian uint16
	FrameExit     byte = 4 // payload: exit code as a big-endian int32
	FrameStdinEOF byte = 5
	FrameError    byte = 6 // payload: a message; the stream ends
)

// maxFrame bounds a frame's payload so a broken peer cannot make us allocate much.
const maxFrame = 1 << 20

// FrameWriter writes frames; it is safe for concurrent use, so stdout and stderr can
// share a stream.
type FrameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// NewFrameWriter returns a FrameWriter on w.
func NewFrameWriter(w io.Writer) *FrameWriter { return &FrameWriter{w: w} }

// WriteFrame writes one frame.
func (f *FrameWriter) WriteFrame(typ byte, payload []byte) error {
	var hdr [5]byte
	hdr[0] = typ
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(payload)))
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := f.w.Write(payload)
	return err
}

// Channel returns an io.Writer that sends what is written as frames of typ.
func (f *FrameWriter) Channel(typ byte) io.Writer { return channelWriter{f, typ} }

type channelWriter struct {
	f   *FrameWriter
	typ byte
}

func (c channelWriter) Write(p []byte) (int, error) {
	for off := 0; off < len(p); off += maxFrame {
		end := min(off+maxFrame, len(p))
		if err := c.f.WriteFrame(c.typ, p[off:end]); err != nil {
			return off, err
		}
	}
	return len(p), nil
}

// ReadFrame reads one frame.
func ReadFrame(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > maxFrame {
		return 0, nil, fmt.Errorf("frame of %d bytes is larger than %d", n, maxFrame)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, err
	}
	return hdr[0], payload, nil
}

// ExitFrame encodes an exit code.
func ExitFrame(code int) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint32(b, uint32(int32(code)))
	return b
}

// ResizeFrame encodes a terminal size.
func ResizeFrame(width, height uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, width)
	binary.BigEndian.PutUint16(b[2:], height)
	return b
}

// ParseResize decodes a resize payload.
func ParseResize(p []byte) (width, height uint16, err error) {
	if len(p) != 4 {
		return 0, 0, errors.New("resize frame must be 4 bytes")
	}
	return binary.BigEndian.Uint16(p), binary.BigEndian.Uint16(p[2:]), nil
}

// ParseExit decodes an exit payload.
func ParseExit(p []byte) (int, error) {
	if len(p) != 4 {
		return 0, errors.New("exit frame must be 4 bytes")
	}
	return int(int32(binary.BigEndian.Uint32(p))), nil
}
