package crypto

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"testing/cryptotest"
)

var update = flag.Bool("update", false, "regenerate crypto/testdata vectors")

// vectors are generated from fixed seeds: identities and salts from detRand,
// HPKE encapsulation from cryptotest.SetGlobalRandom.
type vectors struct {
	AliceToken     string `json:"alice_token"`
	BobToken       string `json:"bob_token"`
	AliceFP        string `json:"alice_fingerprint"`
	SafetyNumber   string `json:"safety_number"`
	BobFile        string `json:"bob_identity_file_hex"` // passphrase "vector", cheapKDF
	Genesis        string `json:"genesis_commit_hex"`
	GenesisHead    string `json:"genesis_head_hex"`
	KeyUpdate      string `json:"key_update_commit_hex"` // by bob
	EpochAuth      string `json:"epoch1_authenticator_hex"`
	Envelope       string `json:"envelope_hex"` // alice -> bob in epoch 1
	EnvelopeText   string `json:"envelope_plaintext"`
	LogChain       string `json:"log_chain_hex"`
	EnvelopeLength int    `json:"envelope_length"`
	// Login is alice's signature over vectorLogin.
	Login string `json:"login_signature_hex"`
}

// vectorLogin is the relay login of the test vectors: challenge 0x01..0x20,
// node "n1", time 1767225600000, channel binding 32 bytes of 0xcb.
func vectorLogin() Login {
	ch := make([]byte, LoginChallengeSize)
	for i := range ch {
		ch[i] = byte(i + 1)
	}
	cb := make([]byte, ChannelBindingSize)
	for i := range cb {
		cb[i] = 0xcb
	}
	return Login{Challenge: ch, Node: "n1", Time: 1767225600000, Channel: cb}
}

func genVectors(t *testing.T) (*vectors, *Group) {
	cryptotest.SetGlobalRandom(t, 42)
	alice, bob := mustIdentity(t, "alice"), mustIdentity(t, "bob")
	file, err := EncryptIdentity(detRand("vector-file"), bob, []byte("vector"), cheapKDF)
	if err != nil {
		t.Fatal(err)
	}
	rng := detRand("vector-group")
	ga, gen, err := NewGroup(rng, alice, "vector-op", []Invite{{bob.Token(), RoleCentre}})
	if err != nil {
		t.Fatal(err)
	}
	gb, err := JoinGroup(bob, [][]byte{gen})
	if err != nil {
		t.Fatal(err)
	}
	ku, err := gb.Commit(rng, KeyUpdate())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*Group{ga, gb} {
		if err := g.ProcessCommit(ku); err != nil {
			t.Fatal(err)
		}
	}
	lc := LogChain(LogChain([32]byte{}, 0, gen), 1, ku)
	env, err := ga.Seal([]byte("vector message"), NewLogHead(1, lc))
	if err != nil {
		t.Fatal(err)
	}
	auth := ga.EpochAuthenticator()
	c0, _ := DecodeCommit(gen)
	h0 := c0.Hash()
	login, err := alice.SignLogin(vectorLogin())
	if err != nil {
		t.Fatal(err)
	}
	return &vectors{
		Login:          hex.EncodeToString(login),
		AliceToken:     alice.Token().String(),
		BobToken:       bob.Token().String(),
		AliceFP:        alice.Fingerprint(),
		SafetyNumber:   SafetyNumber(alice.PublicKey(), bob.PublicKey()),
		BobFile:        hex.EncodeToString(file),
		Genesis:        hex.EncodeToString(gen),
		GenesisHead:    hex.EncodeToString(h0[:]),
		KeyUpdate:      hex.EncodeToString(ku),
		EpochAuth:      hex.EncodeToString(auth[:]),
		Envelope:       hex.EncodeToString(env),
		EnvelopeText:   "vector message",
		LogChain:       hex.EncodeToString(lc[:]),
		EnvelopeLength: len(env),
	}, gb
}

func TestVectors(t *testing.T) {
	path := filepath.Join("testdata", "vectors.json")
	got, regenBob := genVectors(t)
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./crypto -run TestVectors -update)", err)
	}
	var want vectors
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	// The stored vectors must verify and decrypt on their own.
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if _, err := ParseTokenString(want.AliceToken); err != nil {
		t.Fatal(err)
	}
	bob, err := DecryptIdentity(unhex(want.BobFile), []byte("vector"))
	if err != nil {
		t.Fatal(err)
	}
	if bob.Token().String() != want.BobToken {
		t.Fatal("identity file does not match bob's token")
	}
	gb, err := JoinGroup(bob, [][]byte{unhex(want.Genesis)})
	if err != nil {
		t.Fatal(err)
	}
	c0, _ := DecodeCommit(unhex(want.Genesis))
	if h := c0.Hash(); hex.EncodeToString(h[:]) != want.GenesisHead {
		t.Fatal("genesis head")
	}
	if _, _, err := CheckCommit(gb.roster, unhex(want.KeyUpdate)); err != nil {
		t.Fatalf("stored key update: %v", err)
	}
	// Bob's regenerated state (whose new leaf seed came from the fixed
	// reader) opens the stored envelope.
	m, err := regenBob.Open(unhex(want.Envelope))
	if err != nil || string(m.Plaintext) != want.EnvelopeText || m.Log.Seq != 1 {
		t.Fatalf("stored envelope: %v", err)
	}
	alicePub, err := ParseTokenString(want.AliceToken)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyLogin(alicePub.SigningKey, vectorLogin(), unhex(want.Login)); err != nil {
		t.Fatalf("stored login signature: %v", err)
	}
	// Exact re-derivation.
	for name, pair := range map[string][2]string{
		"alice_token":   {got.AliceToken, want.AliceToken},
		"bob_token":     {got.BobToken, want.BobToken},
		"fingerprint":   {got.AliceFP, want.AliceFP},
		"safety":        {got.SafetyNumber, want.SafetyNumber},
		"file":          {got.BobFile, want.BobFile},
		"genesis":       {got.Genesis, want.Genesis},
		"key_update":    {got.KeyUpdate, want.KeyUpdate},
		"epoch_auth":    {got.EpochAuth, want.EpochAuth},
		"envelope":      {got.Envelope, want.Envelope},
		"log_chain":     {got.LogChain, want.LogChain},
		"genesis_head":  {got.GenesisHead, want.GenesisHead},
		"envelope_text": {got.EnvelopeText, want.EnvelopeText},
		"login":         {got.Login, want.Login},
	} {
		if pair[0] != pair[1] {
			t.Errorf("vector %s differs from testdata (regenerate with -update if the format changed on purpose)", name)
		}
	}
	if got.EnvelopeLength != MinPadded+EnvelopeOverhead {
		t.Errorf("envelope length %d", got.EnvelopeLength)
	}
}
