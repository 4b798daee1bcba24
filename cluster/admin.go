package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// AdminHandler serves the cluster's admin API under /cluster/:
//
//	GET  /cluster/status          this node's Status and the configuration
//	POST /cluster/join            {"id": ..., "address": ...} adds a voter
//	POST /cluster/remove          {"id": ...} removes a node
//	GET  /cluster/backup          a consistent copy of this node's FSM file
//
// allow decides whether a request may change the configuration or read a
// backup; status is read-only.
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
	change := func(f func(ctx context.Context, req memberRequest) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if err := allow(r); err != nil {
				httpError(w, http.StatusForbidden, err)
				return
			}
			var req memberRequest
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				httpError(w, http.StatusBadRequest, err)
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), membershipTimeout+10*time.Second)
			defer cancel()
			if err := f(ctx, req); err != nil {
				code := http.StatusInternalServerError
				switch {
				case errors.Is(err, ErrInvalid):
					code = http.StatusBadRequest
				case errors.Is(err, ErrNotLeader):
					code = http.StatusServiceUnavailable
				}
				httpError(w, code, err)
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
	mux.HandleFunc("POST /cluster/join", change(func(ctx context.Context, req memberRequest) error {
		return n.AddVoter(ctx, req.ID, req.Address)
	}))
	mux.HandleFunc("POST /cluster/remove", change(func(ctx context.Context, req memberRequest) error {
		return n.RemoveServer(ctx, req.ID)
	}))
	n.retentionHandlers(mux, allow)
	return mux
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}
