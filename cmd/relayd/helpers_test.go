package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func mustCBOR(t testing.TB, v any) []byte {
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// buildOnce returns a function that builds package pkg (relative to this
// directory) with go build flags into a temporary binary named name, once
// per test run, and returns its path (failing the test if the build fails).
func buildOnce(name, pkg string, flags ...string) func(testing.TB) string {
	build := sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "liaison-test-bin")
		if err != nil {
			return "", err
		}
		path := filepath.Join(dir, name)
		args := append(append([]string{"build"}, flags...), "-o", path, pkg)
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return path, nil
	})
	return func(t testing.TB) string {
		t.Helper()
		path, err := build()
		if err != nil {
			t.Fatal(err)
		}
		return path
	}
}
