package main

import (
	"context"
	"fmt"
	"strings"

	"liaison/clients/session"
	"liaison/crypto"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// parseRole parses a role name (also "center").
func parseRole(s string) (crypto.Role, error) {
	if s == "center" {
		s = "centre"
	}
	r, err := crypto.ParseRole(s)
	if err != nil {
		return 0, fmt.Errorf("%w: role must be admin, centre or officer, not %q", errUsage, s)
	}
	return r, nil
}

// parseMember parses TOKEN[:ROLE] (default officer).
func parseMember(s string) (crypto.Invite, error) {
	role := crypto.RoleOfficer
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i+1:], "=") && len(s)-i <= 8 {
		r, err := parseRole(s[i+1:])
		if err != nil {
			return crypto.Invite{}, err
		}
		role, s = r, s[:i]
	}
	t, err := crypto.ParseTokenString(s)
	if err != nil {
		return crypto.Invite{}, fmt.Errorf("%w: member token: %v", errUsage, err)
	}
	return crypto.Invite{Token: t, Role: role}, nil
}

// cmdOp implements `liaison op ...`.
func cmdOp(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: op needs a command", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := e.newFlagSet("op " + sub)
	var members stringList
	role := "officer"
	nargs := 1
	switch sub {
	case "create":
		fs.Var(&members, "member", "TOKEN[:admin|centre|officer], repeatable")
	case "add":
		fs.StringVar(&role, "role", role, "admin|centre|officer")
		nargs = 2
	case "remove":
		nargs = 2
	case "members", "verify", "update":
	case "list":
		nargs = 0
	default:
		return fmt.Errorf("%w: unknown op command %q", errUsage, sub)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != nargs {
		return fmt.Errorf("%w: op %s needs %d argument(s)", errUsage, sub, nargs)
	}
	if nargs > 0 {
		if err := checkOp(pos[0]); err != nil {
			return err
		}
	}
	var invites []crypto.Invite
	for _, m := range members {
		inv, err := parseMember(m)
		if err != nil {
			return err
		}
		invites = append(invites, inv)
	}
	r, err := parseRole(role)
	if err != nil {
		return err
	}
	var tok *crypto.Token
	if sub == "add" {
		if tok, err = crypto.ParseTokenString(pos[1]); err != nil {
			return fmt.Errorf("%w: token: %v", errUsage, err)
		}
	}

	s, done, err := e.openSession(ctx, sub != "list")
	if err != nil {
		return err
	}
	defer done()
	var entries []session.Entry
	switch sub {
	case "list":
		ops, err := s.Ops()
		if err != nil {
			return err
		}
		for _, o := range ops {
			status := "not a member"
			if o.Member {
				status = o.Role.String()
			}
			fmt.Fprintf(e.stdout, "%s  epoch %d  %d members  seq %d  %s\n", o.Op, o.Epoch, o.Members, o.Seq, status)
		}
		return nil
	case "create":
		entries, err = s.CreateOp(ctx, pos[0], invites)
	case "add":
		entries, err = s.Add(ctx, pos[0], tok, r)
	case "update":
		entries, err = s.KeyUpdate(ctx, pos[0])
	case "remove":
		if _, err := s.Sync(ctx, pos[0]); err != nil {
			return err
		}
		roster, err := s.Members(pos[0])
		if err != nil {
			return err
		}
		m, err := session.ResolveMember(roster, pos[1])
		if err != nil {
			return err
		}
		entries, err = s.Remove(ctx, pos[0], m.Key)
		if err != nil {
			return err
		}
	case "members", "verify":
		if _, err := s.Sync(ctx, pos[0]); err != nil {
			return err
		}
		if sub == "verify" {
			v, err := s.Verify(pos[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s epoch %d\ncode: %s\n", v.Op, v.Epoch, v.Code)
			return nil
		}
		roster, err := s.Members(pos[0])
		if err != nil {
			return err
		}
		self := s.Identity().PublicKey()
		for _, m := range roster.Members {
			you := ""
			if m.Key == self {
				you = "  (you)"
			}
			fmt.Fprintf(e.stdout, "%s  %s  %s%s\n", crypto.Fingerprint(m.Key), m.Role, sanitize(m.Name), you)
		}
		return nil
	}
	for _, en := range entries {
		printEntry(e, "", en)
	}
	return err
}
