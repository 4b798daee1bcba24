package main

import (
	"context"
	"fmt"
	"os"
	"os/user"

	"liaison/clients/session"
	"liaison/crypto"
)

// cmdID implements `liaison id new|show|export`.
func cmdID(_ context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: id needs new, show or export", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := e.newFlagSet("id " + sub)
	var name, peer *string
	switch sub {
	case "new":
		name = fs.String("name", defaultName(), "display name")
	case "show":
		peer = fs.String("peer", "", "another person's token")
	case "export":
	default:
		return fmt.Errorf("%w: unknown id command %q", errUsage, sub)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return fmt.Errorf("%w: id %s takes no arguments", errUsage, sub)
	}
	if sub == "new" {
		path, err := e.identityPath()
		if err != nil {
			return err
		}
		if _, err := os.Stat(path); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite an identity", path)
		}
		pass, err := e.passphrase("New passphrase for "+path+": ", true)
		if err != nil {
			return err
		}
		defer clear(pass)
		id, err := session.CreateIdentityFile(path, *name, pass, kdfParams)
		if err != nil {
			return err
		}
		defer id.Destroy()
		fmt.Fprintf(e.stdout, "identity %s written to %s\nfingerprint: %s\ntoken: %s\n", sanitize(id.Name()), path, id.Fingerprint(), id.Token())
		return nil
	}
	id, err := e.loadIdentity()
	if err != nil {
		return err
	}
	defer id.Destroy()
	switch sub {
	case "export":
		fmt.Fprintln(e.stdout, id.Token())
	case "show":
		fmt.Fprintf(e.stdout, "name: %s\nfingerprint: %s\n", sanitize(id.Name()), id.Fingerprint())
		if *peer != "" {
			t, err := crypto.ParseTokenString(*peer)
			if err != nil {
				return fmt.Errorf("%w: --peer: %v", errUsage, err)
			}
			fmt.Fprintf(e.stdout, "peer: %s\npeer fingerprint: %s\nsafety number: %s\n", sanitize(t.Name), t.Fingerprint(), crypto.SafetyNumber(id.PublicKey(), t.SigningKey))
		}
	}
	return nil
}

// defaultName is $USER, else the account name, else "officer".
func defaultName() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "officer"
}
