package crypto

// Domain-separation context strings. Every signature, hash and KDF label in
// the package starts with one of these, so nothing signed or derived in one
// place is valid in another. They are part of the wire protocol: changing
// one is a format break. docs/crypto.md lists them.
const (
	ctxTokenSig      = "liaison/v1/token-sig"      // Ed25519 over token body
	ctxCommitSig     = "liaison/v1/commit-sig"     // Ed25519 over commit body
	ctxCommitContent = "liaison/v1/commit-content" // SHA-256 over commit content (bound in HPKE info)
	ctxCommitHead    = "liaison/v1/commit-head"    // SHA-256 over whole commit (roster head)
	ctxEpochSeal     = "liaison/v1/epoch-seal"     // HPKE info for sealed epoch secrets
	ctxEpochPRK      = "liaison/v1/epoch-prk"      // HKDF-Extract salt for the epoch secret
	ctxChainInit     = "liaison/v1/chain-init"     // HKDF-Expand: a sender's initial chain key
	ctxEpochAuth     = "liaison/v1/epoch-auth"     // HKDF-Expand: epoch authenticator
	ctxChainNext     = "liaison/v1/chain-next"     // HKDF-Expand: next chain key
	ctxMessageKey    = "liaison/v1/message-key"    // HKDF-Expand: message key + nonce
	ctxEnvelopeSig   = "liaison/v1/envelope-sig"   // Ed25519 over envelope
	ctxFingerprint   = "liaison/v1/fingerprint"    // SHA-512 for fingerprints
	ctxIDFile        = "liaison/v1/idfile"         // identity-file AEAD additional-data prefix
	ctxRelayLogin    = "liaison/v1/relay-login"    // Ed25519 over a relay login (challenge, node, time, channel)
	ctxLogChain      = "liaison/v1/log-chain"      // SHA-256 log hash chain
	ctxLocalState    = "liaison/v1/local-state"    // HKDF salt: keys for a client's local state files
	ctxAdminRequest  = "liaison/v1/admin-request"  // Ed25519 over a cluster admin request statement
	ctxAdminListHead = "liaison/v1/admin-list"     // SHA-256 over a cluster admin list (its head)
	ctxAuditChain    = "liaison/v1/audit-chain"    // SHA-256 audit trail hash chain
)
