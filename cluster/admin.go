package cluster

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"liaison/crypto"
)

// AdminHandler serves the cluster's admin API under /cluster/:
//
//	GET  /cluster/status          this node's Status and the configuration
//	GET  /cluster/admins          the cluster admin list (AdminsReport)
//	GET  /cluster/audit           the audit trail (?from=SEQ&limit=N), binary
//	POST /cluster/join            {"id": ..., "address": ...} adds a voter
//	POST /cluster/remove          {"id": ...} removes a node
//	POST /cluster/admins          {"action": "add"|"remove", "key", "name", "prev"}
//	GET  /cluster/backup          a consistent copy of this node's FSM file
//
// allow is the transport check (loopback, or an admin certificate) for
// everything but status and admins. Every request that changes the cluster
// or reads a backup must also carry a signed admin request
// (AdminRequestHeader) that AuthorizeAdmin accepts; it lands in the audit
// trail before the action is carried out.
func (n *Node) AdminHandler(allow func(*http.Request) error) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cluster/status", func(w http.ResponseWriter, _ *http.Request) {
		servers, err := n.Servers()
		if err != nil {
			httpError(w, http.StatusServiceUnavailable, err)
			return
		}
		writeJSON(w, http.StatusOK, StatusReport{Node: n.Status(), Servers: servers})
	})
	mux.HandleFunc("GET /cluster/admins", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, n.adminsReport())
	})
	mux.HandleFunc("GET /cluster/audit", func(w http.ResponseWriter, r *http.Request) {
		if err := allow(r); err != nil {
			httpError(w, http.StatusForbidden, err)
			return
		}
		n.serveAudit(w, r)
	})
	change := func(action string, f func(ctx context.Context, req memberRequest) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			var req memberRequest
			if !decodeChange(w, r, allow, &req) {
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout+10*time.Second)
			defer cancel()
			if _, err := n.authorizeHTTP(ctx, r, action, req.args()); err != nil {
				httpError(w, adminErrorCode(err), err)
				return
			}
			if err := f(ctx, req); err != nil {
				httpError(w, adminErrorCode(err), err)
				return
			}
			servers, _ := n.Servers()
			writeJSON(w, http.StatusOK, StatusReport{Node: n.Status(), Servers: servers})
		}
	}
	mux.HandleFunc("GET /cluster/backup", func(w http.ResponseWriter, r *http.Request) {
		if err := allow(r); err != nil {
			httpError(w, http.StatusForbidden, err)
			return
		}
		if _, err := n.AuthorizeAdminHTTP(r, crypto.AdminActionBackup, nil); err != nil {
			httpError(w, adminErrorCode(err), err)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="liaison-backup.db"`)
		size, index, err := n.Backup(w)
		if err != nil {
			// Headers are gone; the client sees a short body and fails to
			// restore it, which PrepareRestore checks.
			n.cfg.Logger.Error("backup failed", "err", err, "bytes", size)
			return
		}
		n.cfg.Logger.Info("backup served", "bytes", size, "raft_index", index)
	})
	mux.HandleFunc("POST /cluster/join", change(crypto.AdminActionJoin, func(ctx context.Context, req memberRequest) error {
		return n.AddVoter(ctx, req.ID, req.Address)
	}))
	mux.HandleFunc("POST /cluster/remove", change(crypto.AdminActionRemove, func(ctx context.Context, req memberRequest) error {
		return n.RemoveServer(ctx, req.ID)
	}))
	mux.HandleFunc("POST /cluster/admins", func(w http.ResponseWriter, r *http.Request) {
		var req adminsChange
		if !decodeChange(w, r, allow, &req) {
			return
		}
		args := map[string]string{"key": req.Key, "prev": req.Prev}
		action := crypto.AdminActionAdminsRemove
		switch req.Action {
		case "add":
			action, args["name"] = crypto.AdminActionAdminsAdd, req.Name
		case "remove":
		default:
			httpError(w, http.StatusBadRequest, fmt.Errorf("%w: action %q is not add or remove", ErrInvalid, req.Action))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout)
		defer cancel()
		if _, err := n.authorizeHTTP(ctx, r, action, args); err != nil {
			httpError(w, adminErrorCode(err), err)
			return
		}
		writeJSON(w, http.StatusOK, n.adminsReport())
	})
	n.retentionHandlers(mux, allow)
	return mux
}

// decodeChange admits a cluster-change request (allow) and decodes its
// JSON body (at most 4 KiB, no unknown fields) into v, answering the
// request itself and returning false when either fails.
func decodeChange(w http.ResponseWriter, r *http.Request, allow func(*http.Request) error, v any) bool {
	if err := allow(r); err != nil {
		httpError(w, http.StatusForbidden, err)
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		httpError(w, http.StatusBadRequest, err)
		return false
	}
	return true
}

// adminErrorCode maps an admin error to an HTTP status.
func adminErrorCode(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusForbidden
	case errors.Is(err, ErrStaleHead):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotLeader):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// AdminsReport is the body of GET /cluster/admins.
type AdminsReport struct {
	// Seq is the list's version and Head its hash (hex), which an
	// admins-add or admins-remove request names as "prev"; Head is 64
	// zeros when the cluster has no admin list.
	Seq    uint64        `json:"seq"`
	Head   string        `json:"head"`
	Admins []AdminReport `json:"admins"`
}

// AdminReport is one cluster admin.
type AdminReport struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Fingerprint string `json:"fingerprint"`
}

func (n *Node) adminsReport() AdminsReport {
	l := n.Admins()
	var head [32]byte
	rep := AdminsReport{Admins: []AdminReport{}}
	if l != nil {
		head, rep.Seq = l.Hash(), l.Seq
		for _, a := range l.Admins {
			rep.Admins = append(rep.Admins, AdminReport{Key: crypto.AdminKeyHex(a.Key), Name: a.Name, Fingerprint: crypto.Fingerprint(a.Key)})
		}
	}
	rep.Head = hex.EncodeToString(head[:])
	return rep
}

type adminsChange struct {
	Action string `json:"action"`
	Key    string `json:"key"`
	Name   string `json:"name,omitempty"`
	Prev   string `json:"prev"`
}

// AuditHeadHeader, on GET /cluster/audit, is "SEQ HASH-HEX" of the node's
// last audit entry.
const AuditHeadHeader = "Liaison-Audit-Head"

// serveAudit writes audit entries from ?from= (default 1), at most ?limit=
// (default and maximum 1000) and about 16 MiB, each as a 4-byte big-endian
// length and the entry's encoding.
func (n *Node) serveAudit(w http.ResponseWriter, r *http.Request) {
	from, limit := uint64(1), 1000
	if v := r.URL.Query().Get("from"); v != "" {
		f, err := strconv.ParseUint(v, 10, 64)
		if err != nil || f == 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("%w: from %q", ErrInvalid, v))
			return
		}
		from = f
	}
	if v := r.URL.Query().Get("limit"); v != "" {
		l, err := strconv.Atoi(v)
		if err != nil || l <= 0 {
			httpError(w, http.StatusBadRequest, fmt.Errorf("%w: limit %q", ErrInvalid, v))
			return
		}
		limit = min(l, 1000)
	}
	seq, head := n.AuditHead()
	entries, err := n.ReadAudit(from, limit, 16<<20)
	if err != nil {
		httpError(w, http.StatusServiceUnavailable, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(AuditHeadHeader, fmt.Sprintf("%d %x", seq, head[:]))
	w.WriteHeader(http.StatusOK)
	var hdr [4]byte
	for _, e := range entries {
		binary.BigEndian.PutUint32(hdr[:], uint32(len(e)))
		if _, err := w.Write(hdr[:]); err != nil {
			return
		}
		if _, err := w.Write(e); err != nil {
			return
		}
	}
}

// StatusReport is the body of /cluster/status.
type StatusReport struct {
	Node    Status   `json:"node"`
	Servers []Server `json:"servers"`
}

type memberRequest struct {
	ID      string `json:"id"`
	Address string `json:"address,omitempty"`
}

// args returns the arguments a signed join or remove request must carry.
func (m memberRequest) args() map[string]string {
	a := map[string]string{"id": m.ID}
	if m.Address != "" {
		a["address"] = m.Address
	}
	return a
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
