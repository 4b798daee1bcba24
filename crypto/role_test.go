package crypto

import (
	"errors"
	"testing"
)

func TestParseRole(t *testing.T) {
	for _, r := range []Role{RoleAdmin, RoleCentre, RoleOfficer} {
		got, err := ParseRole(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	for _, s := range []string{"", "Admin", "center", "role(3)", "officer "} {
		if _, err := ParseRole(s); !errors.Is(err, ErrUnknownRole) {
			t.Fatalf("ParseRole(%q): %v, want ErrUnknownRole", s, err)
		}
	}
}
