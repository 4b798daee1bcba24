//go:build js && wasm

package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"syscall/js"

	"liaison/clients/session"
)

// Keys in the browser's localStorage. Everything stored is ciphertext: the
// identity file is sealed under the passphrase (crypto's identity file
// format), operation states under a key derived from the identity.
const (
	keyIdentity = "liaison/identity" // base64 of the identity file
	keyRelays   = "liaison/relays"   // comma-separated relay addresses
	keyStates   = "liaison/state/"   // + hex(first 8 bytes of key) + "/" + op
	maxBlob     = 4 << 20            // bound on a stored blob after decoding
)

// localStore is a session.Store in localStorage, one key per operation,
// base64-encoded (localStorage holds strings). setItem replaces a value
// atomically. Locks are within this page; the page holds a Web Lock on the
// identity (see lockIdentity), so no other tab writes the same keys.
type localStore struct {
	prefix string
	locks  session.Locks
}

func newLocalStore(self [32]byte) *localStore {
	return &localStore{prefix: fmt.Sprintf("%s%x/", keyStates, self[:8])}
}

func storage() js.Value { return js.Global().Get("localStorage") }

// getItem returns the value of key, or ok false.
func getItem(key string) (string, bool) {
	v := storage().Call("getItem", key)
	if v.IsNull() || v.IsUndefined() {
		return "", false
	}
	return v.String(), true
}

// setItem stores value under key; a full storage is an error.
func setItem(key, value string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("browser storage: %v", r)
		}
	}()
	storage().Call("setItem", key, value)
	return nil
}

func (s *localStore) Name(op string) string { return "localStorage " + s.prefix + op }

func (s *localStore) Load(op string) ([]byte, error) {
	v, ok := getItem(s.prefix + op)
	if !ok {
		return nil, session.ErrNoState
	}
	if base64.StdEncoding.DecodedLen(len(v)) > maxBlob*2 {
		return nil, fmt.Errorf("%s: too large", s.Name(op))
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Name(op), err)
	}
	return b, nil
}

func (s *localStore) Save(op string, b []byte) error {
	return setItem(s.prefix+op, base64.StdEncoding.EncodeToString(b))
}

func (s *localStore) Lock(op string) (func(), error) { return s.locks.Lock(op) }

func (s *localStore) List() ([]string, error) {
	st := storage()
	n := st.Get("length").Int()
	var ops []string
	for i := 0; i < n; i++ {
		k := st.Call("key", i)
		if k.Type() != js.TypeString {
			continue
		}
		if op, ok := strings.CutPrefix(k.String(), s.prefix); ok {
			ops = append(ops, op)
		}
	}
	return ops, nil
}

// loadIdentityFile returns the stored identity file.
func loadIdentityFile() ([]byte, bool) {
	v, ok := getItem(keyIdentity)
	if !ok {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(b) > maxBlob {
		return nil, false
	}
	return b, true
}

// errOtherTab means another tab of this browser has the identity open.
var errOtherTab = errors.New("this identity is open in another tab of this browser; close it first")

// lockIdentity takes, for the lifetime of the page, an exclusive Web Lock
// named after the identity, so two tabs never advance the same sending
// chains from copies of one state. Browsers without the Web Locks API get
// no protection across tabs.
func lockIdentity(self [32]byte) error {
	locks := js.Global().Get("navigator").Get("locks")
	if locks.IsUndefined() || locks.IsNull() {
		return nil
	}
	got := make(chan bool, 1)
	cb := js.FuncOf(func(_ js.Value, args []js.Value) any {
		if len(args) == 0 || args[0].IsNull() {
			got <- false
			return nil
		}
		got <- true
		// Held until the page goes away: a promise that never settles.
		return js.Global().Get("Promise").New(js.FuncOf(func(js.Value, []js.Value) any { return nil }))
	})
	opts := js.Global().Get("Object").New()
	opts.Set("ifAvailable", true)
	locks.Call("request", fmt.Sprintf("liaison-identity-%x", self[:8]), opts, cb)
	if !<-got {
		cb.Release()
		return errOtherTab
	}
	return nil
}
