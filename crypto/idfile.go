package crypto

import (
	"encoding/binary"
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// Identity-file format constants.
const (
	idFileMagic   = "LIDF"
	idFileVersion = 1
	idFileKDF     = 1 // argon2id
	idFileSalt    = 16
	// idFileHeaderSize: magic 4, version 1, kdf 1, time 4, memory 4,
	// threads 1, salt 16, nonce 24.
	idFileHeaderSize = 4 + 1 + 1 + 4 + 4 + 1 + idFileSalt + chacha20poly1305.NonceSizeX
	// idFilePlainMax: version 1, sign seed 32, hpke seed 32, name 1+64.
	idFilePlainMax = 1 + 2*SeedSize + 1 + MaxNameLen
	// MaxIdentityFileSize bounds identity files accepted by DecryptIdentity.
	MaxIdentityFileSize = idFileHeaderSize + idFilePlainMax + chacha20poly1305.Overhead
)

// Bounds on argon2id parameters accepted when parsing an identity file, so a
// hostile file cannot demand unbounded memory or time.
const (
	MaxKDFTime    = 16
	MaxKDFMemory  = 1 << 20 // KiB, i.e. 1 GiB
	MaxKDFThreads = 16
)

// KDFParams are argon2id cost parameters. Memory is in KiB.
type KDFParams struct {
	Time    uint32
	Memory  uint32
	Threads uint8
}

// DefaultKDFParams are the parameters for new identity files: 3 passes over
// 64 MiB with 4 lanes.
var DefaultKDFParams = KDFParams{Time: 3, Memory: 64 * 1024, Threads: 4}

func (p KDFParams) check() error {
	if p.Time < 1 || p.Time > MaxKDFTime ||
		p.Threads < 1 || p.Threads > MaxKDFThreads ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > MaxKDFMemory {
		return fmt.Errorf("%w: time=%d memory=%dKiB threads=%d", ErrKDFParams, p.Time, p.Memory, p.Threads)
	}
	return nil
}

// EncryptIdentity serialises id into an identity file encrypted under
// passphrase: argon2id(passphrase, salt, params) keys XChaCha20-Poly1305, and
// the whole header (magic, version, parameters, salt, nonce) is the AEAD
// additional data, prefixed by a context string. Salt and nonce come from
// rand.
func EncryptIdentity(rand io.Reader, id *Identity, passphrase []byte, params KDFParams) ([]byte, error) {
	if err := params.check(); err != nil {
		return nil, err
	}
	var sn [idFileSalt + chacha20poly1305.NonceSizeX]byte
	if err := readRand(rand, sn[:]); err != nil {
		return nil, err
	}
	w := &writer{b: make([]byte, 0, MaxIdentityFileSize)}
	w.raw([]byte(idFileMagic))
	w.u8(idFileVersion)
	w.u8(idFileKDF)
	w.u32(params.Time)
	w.u32(params.Memory)
	w.u8(params.Threads)
	w.raw(sn[:])
	header := w.b

	pw := &writer{b: make([]byte, 0, idFilePlainMax)}
	pw.u8(idFileVersion)
	pw.raw(id.signSeed[:])
	pw.raw(id.hpkeSeed[:])
	pw.str8(id.name)
	defer zero(pw.b)

	key := argon2.IDKey(passphrase, sn[:idFileSalt], params.Time, params.Memory, params.Threads, chacha20poly1305.KeySize)
	defer zero(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	return aead.Seal(header, sn[idFileSalt:], pw.b, idFileAD(header)), nil
}

func idFileAD(header []byte) []byte {
	return append([]byte(ctxIDFile), header...)
}

// ParseIdentityFileHeader returns the argon2id parameters of an identity
// file without deriving any key, after checking them against the bounds.
func ParseIdentityFileHeader(file []byte) (KDFParams, error) {
	if len(file) > MaxIdentityFileSize {
		return KDFParams{}, fmt.Errorf("%w: identity file %d bytes", ErrTooLarge, len(file))
	}
	if len(file) < idFileHeaderSize+chacha20poly1305.Overhead {
		return KDFParams{}, fmt.Errorf("%w: identity file truncated", ErrMalformed)
	}
	if string(file[:4]) != idFileMagic || file[4] != idFileVersion || file[5] != idFileKDF {
		return KDFParams{}, fmt.Errorf("%w: identity file magic/version/kdf", ErrVersion)
	}
	p := KDFParams{
		Time:    binary.BigEndian.Uint32(file[6:10]),
		Memory:  binary.BigEndian.Uint32(file[10:14]),
		Threads: file[14],
	}
	return p, p.check()
}

// DecryptIdentity opens an identity file. A wrong passphrase or any change
// to the file yields ErrDecrypt; parameters beyond the Max* bounds yield
// ErrKDFParams before any key derivation.
func DecryptIdentity(file, passphrase []byte) (*Identity, error) {
	p, err := ParseIdentityFileHeader(file)
	if err != nil {
		return nil, err
	}
	header := file[:idFileHeaderSize]
	salt := header[15 : 15+idFileSalt]
	nonce := header[15+idFileSalt:]
	key := argon2.IDKey(passphrase, salt, p.Time, p.Memory, p.Threads, chacha20poly1305.KeySize)
	defer zero(key)
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, file[idFileHeaderSize:], idFileAD(header))
	if err != nil {
		return nil, fmt.Errorf("%w: identity file (wrong passphrase or corrupted)", ErrDecrypt)
	}
	defer zero(plain)
	r := &reader{b: plain}
	if v := r.u8("identity version"); r.err == nil && v != idFileVersion {
		return nil, fmt.Errorf("%w: identity plaintext version %d", ErrVersion, v)
	}
	signSeed := r.take(SeedSize, "sign seed")
	hpkeSeed := r.take(SeedSize, "hpke seed")
	name := r.str8(1, MaxNameLen, "name")
	if err := r.done("identity file"); err != nil {
		return nil, err
	}
	return identityFromSeeds(name, signSeed, hpkeSeed)
}
