package session

import (
	"crypto/rand"
	"testing"

	"liaison/crypto"
)

// The user comes first, without a safety number; the others follow in
// roster order, each with the safety number shared with the user.
func TestColleagues(t *testing.T) {
	r := &crypto.Roster{OpID: "op", Epoch: 1}
	var keys [][32]byte
	for _, n := range []string{"a", "b", "c"} {
		id, err := crypto.NewIdentity(rand.Reader, n)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, id.PublicKey())
		r.Members = append(r.Members, crypto.Member{Key: id.PublicKey(), Name: n, Role: crypto.RoleOfficer})
	}
	cs := Colleagues(r, keys[1])
	if len(cs) != 3 || cs[0].Name != "b" || !cs[0].Self || cs[0].SafetyNumber != "" || cs[1].Name != "a" || cs[2].Name != "c" {
		t.Fatalf("colleagues %+v", cs)
	}
	for _, c := range cs[1:] {
		if c.Self || c.SafetyNumber != crypto.SafetyNumber(keys[1], c.Key) || c.Fingerprint != crypto.Fingerprint(c.Key) || c.Role != crypto.RoleOfficer {
			t.Fatalf("colleague %+v", c)
		}
	}
}
