package session

import "liaison/crypto"

// Colleague is a member of an operation with what two people compare out
// of band: fingerprints and their safety number (docs/crypto.md).
type Colleague struct {
	Name         string
	Role         crypto.Role
	Key          [32]byte
	Fingerprint  string
	SafetyNumber string // with the user; empty for the user themself
	Self         bool
}

// Colleagues lists r's members as the user self sees them: the user first,
// then the others in roster order, each with fingerprint and safety number.
// The terminal and the web client show this list.
func Colleagues(r *crypto.Roster, self [32]byte) []Colleague {
	out := make([]Colleague, 0, len(r.Members))
	for _, m := range r.Members {
		c := Colleague{Name: m.Name, Role: m.Role, Key: m.Key, Fingerprint: crypto.Fingerprint(m.Key), Self: m.Key == self}
		if c.Self {
			out = append([]Colleague{c}, out...)
			continue
		}
		c.SafetyNumber = crypto.SafetyNumber(self, m.Key)
		out = append(out, c)
	}
	return out
}
