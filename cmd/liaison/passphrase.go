package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/term"
)

// passphrase returns $LIAISON_PASSPHRASE, or prompts on the terminal
// without echo (twice when confirm is set).
func (e *env) passphrase(prompt string, confirm bool) ([]byte, error) {
	if p := e.getenv("LIAISON_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	read := e.readPassword
	if read == nil {
		read = ttyPassword
	}
	p, err := read(prompt)
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, errors.New("empty passphrase")
	}
	if confirm {
		q, err := read("Repeat passphrase: ")
		if err != nil {
			return nil, err
		}
		defer clear(q)
		if !bytes.Equal(p, q) {
			clear(p)
			return nil, errors.New("passphrases do not match")
		}
	}
	return p, nil
}

// ttyPassword reads a line from the controlling terminal without echo.
func ttyPassword(prompt string) ([]byte, error) {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, errors.New("no terminal to ask for the passphrase: set LIAISON_PASSPHRASE")
	}
	defer tty.Close()
	if !term.IsTerminal(int(tty.Fd())) {
		return nil, errors.New("no terminal to ask for the passphrase: set LIAISON_PASSPHRASE")
	}
	fmt.Fprint(tty, prompt)
	p, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return p, err
}
