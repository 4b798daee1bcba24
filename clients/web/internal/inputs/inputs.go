// Package inputs computes the hash of what the web client's WebAssembly
// build is made of, to tell whether the committed build is stale.
package inputs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
)

// ModuleRoot returns the directory of the main module's go.mod.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the liaison module")
	}
	return filepath.Dir(mod), nil
}

type pkg struct {
	ImportPath string
	Dir        string
	Standard   bool
	GoFiles    []string
	Module     *struct {
		Path    string
		Version string
		Main    bool
	}
}

// Hash returns the hex SHA-256 over the inputs of the GOOS=js GOARCH=wasm
// build of ./clients/web/app: for each package of this module it depends
// on, its import path and the names and contents of its Go files; for each
// package of another module, its import path and the module's version. The
// Go toolchain's version is left out on purpose: a patch release changes
// the bytes of the build, not what it does, and the committed wasm_exec.js
// comes from the same toolchain as the committed build.
func Hash(root string) (string, error) {
	cmd := exec.Command("go", "list", "-deps", "-json", "./clients/web/app")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			return "", err
		}
		if !p.Standard {
			pkgs = append(pkgs, p)
		}
	}
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].ImportPath < pkgs[j].ImportPath })
	h := sha256.New()
	fmt.Fprintf(h, "liaison web build inputs v1\n")
	for _, p := range pkgs {
		if p.Module != nil && !p.Module.Main {
			fmt.Fprintf(h, "dep %s %s@%s\n", p.ImportPath, p.Module.Path, p.Module.Version)
			continue
		}
		fmt.Fprintf(h, "pkg %s\n", p.ImportPath)
		files := append([]string(nil), p.GoFiles...)
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				return "", err
			}
			fmt.Fprintf(h, "file %s %d\n", f, len(b))
			h.Write(b)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
