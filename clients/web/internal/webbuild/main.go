// Command webbuild builds the web client: it compiles ./clients/web/app for
// GOOS=js GOARCH=wasm (reproducibly: -trimpath, no build id, no symbol
// table), compresses it with gzip, copies wasm_exec.js from the Go root used
// for the build, and writes the hash of the build's inputs, which the
// package's test compares to catch a stale build. Run it from anywhere in
// the module with `go generate ./clients/web`.
package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"liaison/clients/web/internal/inputs"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "webbuild:", err)
		os.Exit(1)
	}
}

func run() error {
	root, err := inputs.ModuleRoot()
	if err != nil {
		return err
	}
	static := filepath.Join(root, "clients", "web", "static")
	tmp, err := os.MkdirTemp("", "webbuild")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	wasm := filepath.Join(tmp, "liaison.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", wasm, "./clients/web/app")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	raw, err := os.ReadFile(wasm)
	if err != nil {
		return err
	}
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	if err != nil {
		return err
	}
	zw.Write(raw)
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(static, "liaison.wasm.gz"), gz.Bytes(), 0o644); err != nil {
		return err
	}
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return fmt.Errorf("go env GOROOT: %w", err)
	}
	execJS, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(static, "wasm_exec.js"), execJS, 0o644); err != nil {
		return err
	}
	sum, err := inputs.Hash(root)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(static, "inputs.sha256"), []byte(sum+"\n"), 0o644); err != nil {
		return err
	}
	gover, _ := exec.Command("go", "env", "GOVERSION").Output()
	fmt.Printf("liaison.wasm: %d bytes, %d gzipped, %s, inputs %s\n", len(raw), gz.Len(), strings.TrimSpace(string(gover)), sum)
	return nil
}
