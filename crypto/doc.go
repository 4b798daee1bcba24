// Package crypto is Liaison's end-to-end cryptography: identities and their
// tokens and encrypted files, safety numbers, the signed roster chain of an
// operation, epoch secrets sealed with HPKE (MLKEM768-X25519), per-sender
// hash ratchets, and signed, padded message envelopes.
//
// It owns every byte format that is signed, hashed or encrypted (tokens,
// identity files, commits, envelopes, saved group state, cluster admin
// requests and lists, audit entries) and every
// domain-separation label; docs/crypto.md describes them byte by byte.
//
// Promises:
//   - Pure functions over bytes: no network, no disk, no clock. Randomness
//     comes only from the io.Reader passed in, except HPKE encapsulation,
//     which crypto/hpke draws from crypto/rand (tests pin it with
//     testing/cryptotest.SetGlobalRandom).
//   - It imports no other Liaison package.
//   - Every parser is bounded (lengths, member counts, KDF costs) and returns
//     an error wrapping one of the package's sentinel errors; no input makes
//     it panic.
//   - The relay, holding only public data (tokens, commits, envelopes), can
//     verify the roster chain (VerifyChain, CheckCommit, Roster.Apply) and
//     envelope signatures (VerifyEnvelope) but cannot read messages, forge
//     envelopes or commits, or add members.
//   - A removed member decrypts nothing sent after its removal; a new member
//     nothing sent before it joined; stolen Group state decrypts nothing from
//     epochs before its owner's last key update nor after its next one.
//
// Group values are not safe for concurrent use.
package crypto
