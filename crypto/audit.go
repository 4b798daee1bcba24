package crypto

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Audit entry format constants.
const (
	// AuditVersion is the audit entry format version byte.
	AuditVersion = 1
	// MaxAuditOp bounds the operation name in a roster-commit entry.
	MaxAuditOp = 255
	// MaxAuditCert bounds a node certificate in a node-join entry.
	MaxAuditCert = 16 << 10
	// MaxAuditBody bounds an entry's body (a roster commit is the largest).
	MaxAuditBody = 1 + MaxAuditOp + 8 + MaxCommitSize
	// MaxAuditEntrySize bounds an encoded audit entry.
	MaxAuditEntrySize = 1 + 8 + 8 + 32 + 1 + 4 + MaxAuditBody
	// AdminRequestWindowMS is how far (in milliseconds) an admin request's
	// time may be from the clock of the node that accepts it.
	AdminRequestWindowMS = 2 * 60 * 1000
)

// AuditKind says what an audit entry records and how its body is laid out.
type AuditKind uint8

// Audit entry kinds (wire values).
const (
	// AuditAdminAction: the body is a signed AdminRequest (its encoding).
	AuditAdminAction AuditKind = 1
	// AuditRosterCommit: op str8, log sequence u64, then the commit as
	// stored in the operation's log (signed by its signer).
	AuditRosterCommit AuditKind = 2
	// AuditAdminBootstrap: node str8, then the genesis AdminList the first
	// node took from its configuration. Not signed by a person: its
	// authority is the bootstrapping node's configuration.
	AuditAdminBootstrap AuditKind = 3
	// AuditNodeJoin: node str8, address str8, via str8, cert bytes16 (the
	// joining node's TLS certificate, DER, signed by the cluster CA; empty
	// without cluster TLS).
	AuditNodeJoin AuditKind = 4
)

// String names the kind.
func (k AuditKind) String() string {
	switch k {
	case AuditAdminAction:
		return "admin-action"
	case AuditRosterCommit:
		return "roster-commit"
	case AuditAdminBootstrap:
		return "admins-bootstrap"
	case AuditNodeJoin:
		return "node-join"
	}
	return fmt.Sprintf("audit(%d)", uint8(k))
}

// AuditEntry is one entry of the cluster's append-only audit trail. Entries
// are numbered 1, 2, 3, ... and chained: Prev is the Hash of the entry
// before (zero for the first). Times are the Raft leader's clock.
type AuditEntry struct {
	Seq    uint64
	TimeMS int64
	Prev   [32]byte
	Kind   AuditKind
	Body   []byte
}

// Encode returns the entry's canonical encoding.
func (e *AuditEntry) Encode() []byte {
	w := &writer{b: make([]byte, 0, 1+8+8+32+1+4+len(e.Body))}
	w.u8(AuditVersion)
	w.u64(e.Seq)
	w.u64(uint64(e.TimeMS))
	w.fixed32(e.Prev)
	w.u8(uint8(e.Kind))
	w.u32(uint32(len(e.Body)))
	w.raw(e.Body)
	return w.b
}

// Hash returns SHA-256(ctxAuditChain || encoding), which the next entry
// names as Prev.
func (e *AuditEntry) Hash() [32]byte {
	h := sha256.New()
	h.Write([]byte(ctxAuditChain))
	h.Write(e.Encode())
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// DecodeAuditEntry parses one encoded entry with strict bounds. It checks
// the layout of the body for the entry's kind, not its signatures (see
// VerifyAudit). Body aliases b.
func DecodeAuditEntry(b []byte) (*AuditEntry, error) {
	if len(b) > MaxAuditEntrySize {
		return nil, fmt.Errorf("%w: audit entry %d bytes", ErrTooLarge, len(b))
	}
	r := &reader{b: b}
	if v := r.u8("audit version"); r.err == nil && v != AuditVersion {
		return nil, fmt.Errorf("%w: audit entry version %d", ErrVersion, v)
	}
	e := &AuditEntry{Seq: r.u64("audit seq"), TimeMS: int64(r.u64("audit time")), Prev: r.fixed32("audit prev")}
	e.Kind = AuditKind(r.u8("audit kind"))
	n := r.u32("audit body length")
	if r.err == nil && n > MaxAuditBody {
		return nil, fmt.Errorf("%w: audit body %d bytes", ErrTooLarge, n)
	}
	e.Body = r.take(int(n), "audit body")
	if err := r.done("audit entry"); err != nil {
		return nil, err
	}
	if e.Seq == 0 || e.TimeMS < 0 {
		return nil, fmt.Errorf("%w: audit seq %d time %d", ErrMalformed, e.Seq, e.TimeMS)
	}
	if _, err := e.parts(); err != nil {
		return nil, err
	}
	return e, nil
}

// auditParts is an entry's body, parsed.
type auditParts struct {
	req    *AdminRequest // AuditAdminAction (signature verified)
	reqErr error
	op     string // AuditRosterCommit
	seq    uint64
	commit []byte
	node   string // AuditAdminBootstrap, AuditNodeJoin
	list   *AdminList
	addr   string
	via    string
	cert   []byte
}

// parts parses the body. A bad signature on an admin request is reported in
// reqErr, not as a layout error.
func (e *AuditEntry) parts() (*auditParts, error) {
	p := &auditParts{}
	r := &reader{b: e.Body}
	switch e.Kind {
	case AuditAdminAction:
		req, err := decodeAdminRequest(e.Body)
		if err != nil {
			return nil, fmt.Errorf("audit entry %d: %w", e.Seq, err)
		}
		p.req, p.reqErr = req, req.verify()
		return p, nil
	case AuditRosterCommit:
		p.op = r.str8(1, MaxAuditOp, "audit op")
		p.seq = r.u64("audit log seq")
		p.commit = r.b
		if r.err == nil && (len(p.commit) == 0 || len(p.commit) > MaxCommitSize) {
			return nil, fmt.Errorf("%w: audit entry %d: commit of %d bytes", ErrMalformed, e.Seq, len(p.commit))
		}
		r.b = nil
	case AuditAdminBootstrap:
		p.node = r.str8(1, MaxAdminNode, "audit node")
		if r.err == nil {
			l, err := DecodeAdminList(r.b)
			if err != nil {
				return nil, fmt.Errorf("audit entry %d: %w", e.Seq, err)
			}
			p.list, r.b = l, nil
		}
	case AuditNodeJoin:
		p.node = r.str8(1, MaxAdminNode, "audit node")
		p.addr = r.str8(0, 255, "audit address")
		p.via = r.str8(0, MaxAdminNode, "audit via")
		p.cert = r.bytes16(0, MaxAuditCert, "audit cert")
	default:
		return nil, fmt.Errorf("%w: audit entry %d kind %d", ErrMalformed, e.Seq, e.Kind)
	}
	if err := r.done("audit body"); err != nil {
		return nil, fmt.Errorf("audit entry %d: %w", e.Seq, err)
	}
	return p, nil
}

// AdminActionBody returns the body of an AuditAdminAction entry.
func AdminActionBody(req *AdminRequest) []byte { return req.Encode() }

// RosterCommitBody returns the body of an AuditRosterCommit entry.
func RosterCommitBody(op string, seq uint64, commit []byte) []byte {
	w := &writer{b: make([]byte, 0, 1+len(op)+8+len(commit))}
	w.str8(op)
	w.u64(seq)
	w.raw(commit)
	return w.b
}

// AdminBootstrapBody returns the body of an AuditAdminBootstrap entry.
func AdminBootstrapBody(node string, l *AdminList) []byte {
	w := &writer{}
	w.str8(node)
	w.raw(l.Encode())
	return w.b
}

// NodeJoinBody returns the body of an AuditNodeJoin entry.
func NodeJoinBody(node, addr, via string, cert []byte) []byte {
	w := &writer{}
	w.str8(node)
	w.str8(addr)
	w.str8(via)
	w.bytes16(cert)
	return w.b
}

// AuditRecord is one verified (or not) audit entry in readable form.
type AuditRecord struct {
	Seq     uint64
	TimeMS  int64
	Actor   string // a fingerprint, or "node ID"
	Action  string
	Details string
	// Err is why the entry failed verification (nil: it verified).
	Err error
}

// auditState is what VerifyAudit carries from one entry to the next: the
// admin list and operation rosters the trail has built so far.
type auditState struct {
	next       uint64
	prev       [32]byte
	admins     *AdminList
	rosters    map[string]*Roster
	nonces     map[[AdminNonceSize]byte]bool
	verifyJoin func(string, *x509.Certificate, time.Time) error
}

// VerifyAudit verifies a whole trail from its first entry: numbering and
// hash chain; every admin request's signature, time window and nonce
// (never reused), and that its signer was a cluster admin at that point
// (replaying the admin list from the bootstrap and admins-add/-remove
// entries; before any list exists every signed request is accepted, as the
// nodes did); every roster commit's signature, and its authority against
// the operation's roster when the trail holds the operation's genesis. It
// returns one record per entry and a non-nil error if any entry failed.
func VerifyAudit(entries []*AuditEntry) ([]AuditRecord, error) {
	return VerifyAuditWith(entries, AuditOptions{})
}

// AuditOptions adds checks to VerifyAuditWith.
type AuditOptions struct {
	// VerifyJoinCert, when set, checks a node-join entry's certificate
	// (DER) for the joining node's id at the entry's time (for example
	// against the cluster CA); an entry without a certificate then fails.
	VerifyJoinCert func(node string, cert *x509.Certificate, at time.Time) error
}

// VerifyAuditWith is VerifyAudit with extra checks.
func VerifyAuditWith(entries []*AuditEntry, opts AuditOptions) ([]AuditRecord, error) {
	st := &auditState{next: 1, rosters: map[string]*Roster{}, nonces: map[[AdminNonceSize]byte]bool{}, verifyJoin: opts.VerifyJoinCert}
	out := make([]AuditRecord, len(entries))
	failed := 0
	for i, e := range entries {
		out[i] = st.verify(e)
		if out[i].Err != nil {
			failed++
		}
	}
	if failed > 0 {
		return out, fmt.Errorf("%w: %d of %d audit entries failed verification", ErrBadSignature, failed, len(entries))
	}
	return out, nil
}

func (st *auditState) verify(e *AuditEntry) AuditRecord {
	rec := AuditRecord{Seq: e.Seq, TimeMS: e.TimeMS, Action: e.Kind.String(), Actor: "-"}
	fail := func(err error) AuditRecord {
		if rec.Err == nil {
			rec.Err = err
		}
		return rec
	}
	if e.Seq != st.next || e.Prev != st.prev {
		fail(fmt.Errorf("%w: entry %d does not follow entry %d", ErrAuditChain, e.Seq, st.next-1))
	}
	st.next, st.prev = e.Seq+1, e.Hash()
	p, err := e.parts()
	if err != nil {
		return fail(err)
	}
	switch e.Kind {
	case AuditAdminAction:
		req := p.req
		rec.Actor, rec.Action, rec.Details = req.Fingerprint(), req.Action, describeArgs(req)
		if p.reqErr != nil {
			return fail(p.reqErr)
		}
		if err := st.admins.Authorize(req); err != nil {
			return fail(err)
		}
		if d := req.Time - e.TimeMS; d > AdminRequestWindowMS || d < -AdminRequestWindowMS {
			return fail(fmt.Errorf("%w: request signed %d ms from its acceptance", ErrMalformed, d))
		}
		if st.nonces[req.Nonce] {
			return fail(fmt.Errorf("%w: nonce reused (replay)", ErrMalformed))
		}
		st.nonces[req.Nonce] = true
		if IsAdminListAction(req.Action) {
			next, err := st.admins.ApplyRequest(req)
			if err != nil {
				return fail(err)
			}
			st.admins = next
		}
	case AuditRosterCommit:
		rec.Details = fmt.Sprintf("op=%s seq=%d", p.op, p.seq)
		c, err := DecodeCommit(p.commit)
		if err != nil {
			return fail(err)
		}
		rec.Actor = Fingerprint(c.Signer)
		rec.Details += fmt.Sprintf(" epoch=%d %s", c.Epoch, describeChanges(c))
		if err := c.verifySignature(); err != nil {
			return fail(err)
		}
		if c.OpID != p.op {
			return fail(fmt.Errorf("%w: commit for %q recorded under %q", ErrWrongOperation, c.OpID, p.op))
		}
		cur, known := st.rosters[p.op]
		if known || c.Epoch == 0 {
			_, next, err := CheckCommit(cur, p.commit)
			if err != nil {
				return fail(err)
			}
			st.rosters[p.op] = next
		} else {
			rec.Details += " (signature only: the operation's genesis predates the trail)"
		}
	case AuditAdminBootstrap:
		rec.Actor = "node " + p.node
		rec.Details = describeList(p.list)
		if st.admins != nil {
			return fail(fmt.Errorf("%w: bootstrap of admins after a list exists", ErrBadOp))
		}
		if p.list.Seq != 0 || p.list.Prev != ([32]byte{}) {
			return fail(fmt.Errorf("%w: bootstrap list is not a genesis", ErrBadOp))
		}
		st.admins = p.list
	case AuditNodeJoin:
		rec.Actor = "node " + p.via
		rec.Details = fmt.Sprintf("node=%s raft=%s", p.node, p.addr)
		if len(p.cert) > 0 {
			cert, err := x509.ParseCertificate(p.cert)
			if err != nil {
				return fail(fmt.Errorf("%w: join certificate: %v", ErrMalformed, err))
			}
			sum := sha256.Sum256(p.cert)
			rec.Details += fmt.Sprintf(" cert=%q sha256=%x", cert.Subject.CommonName, sum[:8])
			if st.verifyJoin != nil {
				if err := st.verifyJoin(p.node, cert, time.UnixMilli(e.TimeMS)); err != nil {
					return fail(fmt.Errorf("%w: join certificate: %v", ErrBadSignature, err))
				}
				rec.Details += " (verified)"
			}
		} else {
			rec.Details += " (no cluster TLS: no certificate)"
			if st.verifyJoin != nil {
				return fail(fmt.Errorf("%w: node join without a certificate", ErrBadSignature))
			}
		}
	}
	return rec
}

func describeArgs(req *AdminRequest) string {
	keys := make([]string, 0, len(req.Args))
	for k := range req.Args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{"node=" + req.Node}
	for _, k := range keys {
		v := req.Args[k]
		if k == "key" {
			if key, err := ParseAdminKey(v); err == nil {
				v = Fingerprint(key)
			}
		}
		if k == "prev" && len(v) > 16 {
			v = v[:16]
		}
		parts = append(parts, fmt.Sprintf("%s=%q", k, v))
	}
	return strings.Join(parts, " ")
}

func describeChanges(c *Commit) string {
	var parts []string
	for _, ch := range c.Changes {
		switch ch.Kind {
		case ChangeAdd:
			name := ""
			if ch.Token != nil {
				name = ch.Token.Name
			}
			parts = append(parts, fmt.Sprintf("add %q as %s (%s)", name, ch.Role, Fingerprint(ch.key())))
		case ChangeRemove:
			parts = append(parts, "remove "+Fingerprint(ch.Member))
		case ChangeSetRole:
			parts = append(parts, fmt.Sprintf("set-role %s %s", Fingerprint(ch.Member), ch.Role))
		default:
			parts = append(parts, ch.Kind.String())
		}
	}
	return strings.Join(parts, ", ")
}

func describeList(l *AdminList) string {
	parts := make([]string, len(l.Admins))
	for i, a := range l.Admins {
		parts[i] = fmt.Sprintf("%q (%s)", a.Name, Fingerprint(a.Key))
	}
	return "admins: " + strings.Join(parts, ", ")
}

// AdminKeyHex returns a key as the 64 hex digits admin requests carry.
func AdminKeyHex(k [32]byte) string { return hex.EncodeToString(k[:]) }

// CheckAuditBody checks that body is well formed for kind (an admin
// request's signature included).
func CheckAuditBody(kind AuditKind, body []byte) error {
	e := &AuditEntry{Seq: 1, Kind: kind, Body: body}
	p, err := e.parts()
	if err == nil && p.reqErr != nil {
		err = p.reqErr
	}
	return err
}

// ParseAdminBootstrapBody returns the node and the genesis list of an
// AuditAdminBootstrap body.
func ParseAdminBootstrapBody(body []byte) (string, *AdminList, error) {
	e := &AuditEntry{Seq: 1, Kind: AuditAdminBootstrap, Body: body}
	p, err := e.parts()
	if err != nil {
		return "", nil, err
	}
	return p.node, p.list, nil
}
