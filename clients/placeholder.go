package clients

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// PlaintextMagic starts every placeholder envelope.
//
// PLACEHOLDER, NOT ENCRYPTED: see PlaintextEnvelope.
const PlaintextMagic = "LIAISON-PLAINTEXT-V0\x00"

// MaxPlaintextSender is the longest sender name a placeholder envelope holds,
// in bytes; longer names are truncated.
const MaxPlaintextSender = 255

// ErrNotPlaintext is returned by ParsePlaintextEnvelope for bytes that are not
// a placeholder envelope.
var ErrNotPlaintext = errors.New("clients: not a plaintext placeholder envelope")

// PlaintextMessage is the content of a placeholder envelope.
//
// PLACEHOLDER, NOT ENCRYPTED: see PlaintextEnvelope.
type PlaintextMessage struct {
	// Sender is the name the sender claimed; nothing verifies it.
	Sender string
	// Text is the message text.
	Text string
	// Time is the sender's clock when it built the envelope (millisecond
	// precision).
	Time time.Time
}

// PlaintextEnvelope builds a PLAINTEXT PLACEHOLDER envelope.
//
// THIS IS NOT ENCRYPTED AND NOT SIGNED: the relay and anyone on the path can
// read and forge it. It exists only so that the relay, the client library and
// the CLI can be exercised end to end before the envelopes of crypto/ (see
// docs/crypto.md) are wired in; it will be replaced by them, and clients will
// then refuse it.
//
// Layout (all integers big-endian):
//
//	magic   "LIAISON-PLAINTEXT-V0\x00"  (21 bytes)
//	time    int64 Unix milliseconds    (8 bytes)
//	slen    uint8 sender length        (1 byte)
//	sender  UTF-8                      (slen bytes)
//	text    UTF-8                      (the rest)
//
// A sender longer than MaxPlaintextSender bytes is truncated at a rune
// boundary; invalid UTF-8 is replaced with U+FFFD.
func PlaintextEnvelope(sender, text string, now time.Time) []byte {
	sender = toValidUTF8(sender)
	text = toValidUTF8(text)
	for len(sender) > MaxPlaintextSender {
		_, size := utf8.DecodeLastRuneInString(sender)
		sender = sender[:len(sender)-size]
	}
	b := make([]byte, 0, len(PlaintextMagic)+9+len(sender)+len(text))
	b = append(b, PlaintextMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(now.UnixMilli()))
	b = append(b, byte(len(sender)))
	b = append(b, sender...)
	b = append(b, text...)
	return b
}

// ParsePlaintextEnvelope parses a placeholder envelope built by
// PlaintextEnvelope. It returns an error wrapping ErrNotPlaintext for
// anything else (such as a real, encrypted envelope).
//
// PLACEHOLDER, NOT ENCRYPTED: see PlaintextEnvelope.
func ParsePlaintextEnvelope(b []byte) (PlaintextMessage, error) {
	if !bytes.HasPrefix(b, []byte(PlaintextMagic)) {
		return PlaintextMessage{}, ErrNotPlaintext
	}
	b = b[len(PlaintextMagic):]
	if len(b) < 9 {
		return PlaintextMessage{}, fmt.Errorf("%w: truncated header", ErrNotPlaintext)
	}
	ms := int64(binary.BigEndian.Uint64(b))
	slen := int(b[8])
	b = b[9:]
	if len(b) < slen {
		return PlaintextMessage{}, fmt.Errorf("%w: truncated sender", ErrNotPlaintext)
	}
	sender, text := b[:slen], b[slen:]
	if !utf8.Valid(sender) || !utf8.Valid(text) {
		return PlaintextMessage{}, fmt.Errorf("%w: invalid UTF-8", ErrNotPlaintext)
	}
	return PlaintextMessage{Sender: string(sender), Text: string(text), Time: time.UnixMilli(ms)}, nil
}

func toValidUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
}
