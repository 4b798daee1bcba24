package relay

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// The polled reader (poll.go) parses client WebSocket frames itself (RFC
// 6455, section 5), so that it always knows how much of a message it holds
// and needs no reader goroutine between messages. Writes still go through
// gorilla's Conn.

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// maxControlPayload is the largest payload of a control frame.
const maxControlPayload = 125

// maxPrealloc bounds the buffer allocated for a message on its header.
const maxPrealloc = 16 << 10

// errReadLimit reports a message over the read limit (closed 1009);
// errProtocol, a frame that breaks RFC 6455 (closed 1002).
var (
	errReadLimit = errors.New("websocket: message over the read limit")
	errProtocol  = errors.New("websocket: protocol error")
)

// protocolError is an errProtocol with the reason sent in the close frame.
type protocolError string

func (e protocolError) Error() string { return errProtocol.Error() + ": " + string(e) }
func (e protocolError) Unwrap() error { return errProtocol }

// frameSink receives what a frameParser reads. A false result stops the
// parse (the connection is ending).
type frameSink interface {
	// onMessage is a complete data message (text or binary); data is
	// valid for the call only (the parser reuses it).
	onMessage(text bool, data []byte) bool
	// onControl is a ping, pong or close frame's payload (valid for the
	// call only).
	onControl(op byte, payload []byte) bool
}

// frameParser is the state of a connection's WebSocket read between two
// reads of the socket: a partial frame header, the frame being read and the
// message being assembled. A connection holds one only while a frame or a
// message is incomplete (see idle), so an idle connection holds none.
type frameParser struct {
	hdr  [14]byte // a header not yet complete
	nhdr int

	inFrame bool
	op      byte   // the current frame's opcode
	fin     bool   // the current frame is the last of its message
	left    uint64 // payload bytes of the current frame still to read
	mask    [4]byte
	maskPos int
	ctl     []byte // the current control frame's payload

	msgOp byte   // opText or opBinary while a message is open, else 0
	msg   []byte // the open message's payload so far
}

// idle reports whether p holds nothing between frames.
func (p *frameParser) idle() bool { return p.nhdr == 0 && !p.inFrame && p.msgOp == 0 }

// feed parses b, handing complete messages and control frames to sink. It
// returns false when sink stopped it, and errReadLimit or a protocolError
// when the client broke the limit (limit bytes per message) or the
// protocol; after either, p must not be fed again.
func (p *frameParser) feed(b []byte, limit int, sink frameSink) (bool, error) {
	for {
		if !p.inFrame {
			if len(b) == 0 {
				return true, nil
			}
			var err error
			if b, err = p.header(b, limit); err != nil {
				return false, err
			}
			if !p.inFrame {
				return true, nil // header incomplete: wait for more bytes
			}
		}
		n := min(p.left, uint64(len(b)))
		if n > 0 {
			chunk := b[:n]
			b = b[n:]
			p.left -= n
			start := len(p.msg)
			if p.op >= opClose {
				start = len(p.ctl)
				p.ctl = append(p.ctl, chunk...)
				p.unmask(p.ctl[start:])
			} else {
				p.msg = append(p.msg, chunk...)
				p.unmask(p.msg[start:])
			}
		}
		if p.left > 0 {
			return true, nil
		}
		p.inFrame = false
		if ok, err := p.endFrame(sink); !ok || err != nil {
			return ok, err
		}
	}
}

// header consumes a frame header from b (keeping a partial one) and
// checks it; it returns the rest of b.
func (p *frameParser) header(b []byte, limit int) ([]byte, error) {
	need := 2
	for {
		if p.nhdr < need {
			n := copy(p.hdr[p.nhdr:need], b)
			p.nhdr += n
			b = b[n:]
			if p.nhdr < need {
				return b, nil
			}
		}
		if need == 2 {
			switch {
			case p.hdr[0]&0x70 != 0:
				return b, protocolError("reserved bits set")
			case p.hdr[1]&0x80 == 0:
				return b, protocolError("client frame not masked")
			}
			need = 2 + 4
			switch p.hdr[1] & 0x7f {
			case 126:
				need += 2
			case 127:
				need += 8
			}
			if p.nhdr < need {
				continue
			}
		}
		break
	}
	h := p.hdr[:p.nhdr]
	p.nhdr = 0
	fin, op := h[0]&0x80 != 0, h[0]&0x0f
	n, rest := uint64(h[1]&0x7f), h[2:]
	switch n {
	case 126:
		n, rest = uint64(binary.BigEndian.Uint16(rest)), rest[2:]
	case 127:
		n, rest = binary.BigEndian.Uint64(rest), rest[8:]
	}
	switch op {
	case opClose, opPing, opPong:
		if !fin || n > maxControlPayload {
			return b, protocolError("invalid control frame")
		}
		p.ctl = p.ctl[:0]
	case opText, opBinary:
		if p.msgOp != 0 {
			return b, protocolError("data frame inside a fragmented message")
		}
		if n > uint64(limit) {
			return b, errReadLimit
		}
		p.msgOp = op
		// Room for the bytes announced, up to maxPrealloc: beyond that
		// the message grows as its bytes arrive, so a client cannot make
		// the relay hold MaxFrame for a header alone. The last message's
		// buffer is reused when it is big enough (see endFrame).
		if want := int(min(n, maxPrealloc)); cap(p.msg) < want {
			p.msg = make([]byte, 0, want)
		}
	case opContinuation:
		if p.msgOp == 0 {
			return b, protocolError("continuation without a message")
		}
		if n > uint64(limit-len(p.msg)) {
			return b, errReadLimit
		}
	default:
		return b, protocolError("unknown opcode")
	}
	p.inFrame, p.op, p.fin, p.left, p.maskPos = true, op, fin, n, 0
	copy(p.mask[:], rest[:4])
	return b, nil
}

func (p *frameParser) unmask(b []byte) {
	// Byte by byte up to a mask boundary, then eight bytes at a time with
	// the mask repeated, then the tail.
	for len(b) > 0 && p.maskPos&3 != 0 {
		b[0] ^= p.mask[p.maskPos&3]
		b = b[1:]
		p.maskPos++
	}
	if len(b) >= 8 {
		m := uint64(binary.LittleEndian.Uint32(p.mask[:]))
		m |= m << 32
		n := len(b) &^ 7
		for i := 0; i < n; i += 8 {
			binary.LittleEndian.PutUint64(b[i:], binary.LittleEndian.Uint64(b[i:])^m)
		}
		b = b[n:]
		p.maskPos += n
	}
	for i := range b {
		b[i] ^= p.mask[p.maskPos&3]
		p.maskPos++
	}
}

// endFrame hands a complete frame (or, after its last frame, a message) to
// sink.
func (p *frameParser) endFrame(sink frameSink) (bool, error) {
	switch p.op {
	case opClose:
		if len(p.ctl) == 1 {
			return false, protocolError("invalid close payload")
		}
		if len(p.ctl) >= 2 {
			code := int(binary.BigEndian.Uint16(p.ctl))
			if !validCloseCode(code) {
				return false, protocolError("invalid close code")
			}
			if !utf8.Valid(p.ctl[2:]) {
				return false, protocolError("invalid utf8 in close reason")
			}
		}
		return sink.onControl(opClose, p.ctl), nil
	case opPing, opPong:
		return sink.onControl(p.op, p.ctl), nil
	}
	if !p.fin {
		return true, nil
	}
	// The buffer is the next message's once sink returns (sink.onMessage
	// keeps nothing of it), so a parser allocates per message only for
	// one larger than any before it.
	text, msg := p.msgOp == opText, p.msg
	p.msgOp, p.msg = 0, p.msg[:0]
	return sink.onMessage(text, msg), nil
}

// release readies an idle p for the pool: it keeps a message buffer of at
// most maxPrealloc bytes, so the pool holds no buffer a big message grew.
func (p *frameParser) release() {
	p.ctl = p.ctl[:0]
	if cap(p.msg) > maxPrealloc {
		p.msg = nil
	}
}

// validCloseCode reports whether a client may send code in a close frame
// (RFC 6455, section 7.4).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011, code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// closePayload is the close frame the relay echoes to a client's close
// frame payload (RFC 6455, section 5.5.1): the same code, or none.
func closePayload(payload []byte) []byte {
	if len(payload) < 2 {
		return []byte{}
	}
	return websocket.FormatCloseMessage(int(binary.BigEndian.Uint16(payload)), "")
}
