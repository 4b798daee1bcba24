package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"time"

	"liaison/cluster"
	"liaison/crypto"
)

// adminSigner loads the identity that signs admin requests.
func (e *env) adminSigner() (*crypto.Identity, error) {
	id, err := e.loadIdentity()
	if err != nil {
		return nil, fmt.Errorf("admin requests are signed with your identity: %w", err)
	}
	return id, nil
}

// signAdminRequest asks the node at base for its id, then signs a request
// for action with args addressed to that node and attaches it to req.
func signAdminRequest(ctx context.Context, hc *http.Client, req *http.Request, base string, id *crypto.Identity, action string, args map[string]string) error {
	st, err := getStatus(ctx, hc, base)
	if err != nil {
		return err
	}
	ar, err := crypto.NewAdminRequest(rand.Reader, id, action, st.Node.NodeID, time.Now().UnixMilli(), args)
	if err != nil {
		return err
	}
	req.Header.Set(cluster.AdminRequestHeader, base64.RawURLEncoding.EncodeToString(ar.Encode()))
	return nil
}
