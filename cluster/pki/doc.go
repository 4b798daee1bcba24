// Package pki is Liaison's small certificate authority: it creates the
// cluster CA (`liaison admin ca`), issues node, admin and client
// certificates from it, and builds the tls.Configs that nodes, relayd's
// client listener and clients use.
//
// # Identities
//
// Every leaf certificate names its holder with exactly one URI SAN:
//
//	liaison://node/<id>     a relay node (ExtKeyUsage ServerAuth and ClientAuth)
//	liaison://admin/<name>  an administrator (ClientAuth only)
//	liaison://client/<name> a client device or tool (ClientAuth only)
//
// A node certificate's CommonName is also the node id. Node certificates
// carry the node's host names and IP addresses (Request.Hosts) so that the
// same certificate can serve relayd's client-facing HTTPS listener, where
// clients verify host names the usual way.
//
// # Node-to-node TLS
//
// NodeTLS returns one *tls.Config that a node uses both to accept
// (tls.Server) and to dial (tls.Client) cluster connections. Both sides
// present their node certificate and both sides require that the peer's
// certificate chains directly to the cluster CA and is a node certificate:
// an admin or client certificate from the same CA, a certificate from
// another CA, an expired certificate or no certificate at all is refused in
// the handshake. See NodeTLS for why host names are not checked there.
//
// # Purity
//
// NewCA and Issue are pure functions of their arguments: the caller passes
// the source of randomness and the current time; nothing reads the clock.
// (Since Go 1.26 the standard library ignores the reader for ECDSA key
// generation and signing and always uses a secure source; the reader still
// supplies the serial numbers.) The tls.Configs verify peers against the
// config's Time field when set, else the wall clock, as crypto/tls does.
//
// Keys are ECDSA P-256, which every TLS stack (including browsers, for the
// web client) accepts; they are stored as PKCS #8 "PRIVATE KEY" PEM blocks.
package pki
