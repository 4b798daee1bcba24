package cluster

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"liaison/crypto"
)

// RetentionReport is the body of GET and POST /cluster/retention.
type RetentionReport struct {
	Op string `json:"op"`
	// MaxAge is a Go duration ("720h0m0s"), empty for no age limit.
	MaxAge   string `json:"max_age,omitempty"`
	MaxCount uint64 `json:"max_count,omitempty"`
	// Custom is true when the operation has a policy of its own; false
	// means the node's default applies.
	Custom bool `json:"custom"`
	// First and Last are the oldest and newest entries this node holds.
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// retentionRequest is the body of POST /cluster/retention.
type retentionRequest struct {
	Op       string `json:"op"`
	MaxAge   string `json:"max_age,omitempty"`
	MaxCount uint64 `json:"max_count,omitempty"`
	Clear    bool   `json:"clear,omitempty"`
}

// args returns the arguments a signed retention request must carry.
func (r retentionRequest) args() map[string]string {
	return map[string]string{"op": r.Op, "max_age": r.MaxAge, "max_count": strconv.FormatUint(r.MaxCount, 10), "clear": strconv.FormatBool(r.Clear)}
}

func (n *Node) retentionReport(op string) (RetentionReport, error) {
	p, custom, err := n.RetentionOf(op)
	if err != nil {
		return RetentionReport{}, err
	}
	h := n.Head(op)
	r := RetentionReport{Op: op, MaxCount: p.MaxCount, Custom: custom, First: h.First, Last: h.Last}
	if p.MaxAge > 0 {
		r.MaxAge = p.MaxAge.String()
	}
	return r, nil
}

// retentionHandlers serves GET /cluster/retention?op=OP (open like status)
// and POST /cluster/retention (a cluster change: allow decides, and it must
// carry a signed admin request for "retention" that AuthorizeAdmin accepts;
// it lands in the audit trail).
func (n *Node) retentionHandlers(mux *http.ServeMux, allow func(*http.Request) error) {
	mux.HandleFunc("GET /cluster/retention", func(w http.ResponseWriter, r *http.Request) {
		op := r.URL.Query().Get("op")
		if op == "" || len(op) > MaxOpLen {
			httpError(w, http.StatusBadRequest, fmt.Errorf("%w: ?op=OPERATION required", ErrInvalid))
			return
		}
		rep, err := n.retentionReport(op)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		writeJSON(w, http.StatusOK, rep)
	})
	mux.HandleFunc("POST /cluster/retention", func(w http.ResponseWriter, r *http.Request) {
		var req retentionRequest
		if !decodeChange(w, r, allow, &req) {
			return
		}
		var p Retention
		p.MaxCount = req.MaxCount
		if req.MaxAge != "" {
			d, err := time.ParseDuration(req.MaxAge)
			if err != nil {
				httpError(w, http.StatusBadRequest, fmt.Errorf("%w: max_age: %v", ErrInvalid, err))
				return
			}
			p.MaxAge = d
		}
		ctx, cancel := context.WithTimeout(r.Context(), n.cfg.ApplyTimeout+5*time.Second)
		defer cancel()
		if _, err := n.authorizeHTTP(ctx, r, crypto.AdminActionRetention, req.args()); err != nil {
			httpError(w, adminErrorCode(err), err)
			return
		}
		if err := n.SetRetention(ctx, req.Op, p, req.Clear); err != nil {
			httpError(w, adminErrorCode(err), err)
			return
		}
		rep, err := n.retentionReport(req.Op)
		if err != nil {
			httpError(w, http.StatusInternalServerError, err)
			return
		}
		n.cfg.Logger.Info("retention policy changed", "op", req.Op, "max_age", rep.MaxAge, "max_count", rep.MaxCount, "custom", rep.Custom)
		writeJSON(w, http.StatusOK, rep)
	})
}
