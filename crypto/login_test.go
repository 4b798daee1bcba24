package crypto

import (
	"bytes"
	"errors"
	"testing"
)

func TestLogin(t *testing.T) {
	id := mustIdentity(t, "a")
	ch := bytes.Repeat([]byte{7}, LoginChallengeSize)
	cb := bytes.Repeat([]byte{9}, ChannelBindingSize)
	l := Login{Challenge: ch, Node: "n1", Time: 1700000000000, Channel: cb}
	sig, err := id.SignLogin(l)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyLogin(id.PublicKey(), l, sig); err != nil {
		t.Fatal(err)
	}
	other := mustIdentity(t, "b")
	for name, tc := range map[string]struct {
		pub [32]byte
		l   Login
		sig []byte
	}{
		"other key":     {other.PublicKey(), l, sig},
		"challenge":     {id.PublicKey(), Login{Challenge: bytes.Repeat([]byte{8}, 32), Node: "n1", Time: l.Time, Channel: cb}, sig},
		"node":          {id.PublicKey(), Login{Challenge: ch, Node: "n2", Time: l.Time, Channel: cb}, sig},
		"time":          {id.PublicKey(), Login{Challenge: ch, Node: "n1", Time: l.Time + 1, Channel: cb}, sig},
		"channel":       {id.PublicKey(), Login{Challenge: ch, Node: "n1", Time: l.Time, Channel: bytes.Repeat([]byte{1}, 32)}, sig},
		"no channel":    {id.PublicKey(), Login{Challenge: ch, Node: "n1", Time: l.Time}, sig},
		"short sig":     {id.PublicKey(), l, sig[:10]},
		"flipped sig":   {id.PublicKey(), l, append(append([]byte{}, sig[:63]...), sig[63]^1)},
		"empty channel": {id.PublicKey(), Login{Challenge: ch, Node: "n1", Time: l.Time, Channel: []byte{}}, sig},
	} {
		if err := VerifyLogin(tc.pub, tc.l, tc.sig); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	// Malformed inputs are refused, not signed.
	for name, bad := range map[string]Login{
		"short challenge": {Challenge: ch[:31], Node: "n1"},
		"long node":       {Challenge: ch, Node: string(bytes.Repeat([]byte{'x'}, 256))},
		"short channel":   {Challenge: ch, Node: "n1", Channel: cb[:31]},
	} {
		if _, err := id.SignLogin(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
		if err := VerifyLogin(id.PublicKey(), bad, sig); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: verify: %v", name, err)
		}
	}
}
