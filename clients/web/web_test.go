package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"liaison/clients/web/internal/inputs"
)

// The committed build matches its sources: the hash of the inputs (this
// module's Go files the client is built from, and dependency versions) is
// the one recorded when it was built. With LIAISON_WEB_REBUILD=1 the test
// also rebuilds it and compares the bytes (reproducible build).
func TestBuildIsFresh(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	root, err := inputs.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	sum, err := inputs.Hash(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := Version(); got != sum {
		t.Fatalf("the committed web client build is stale (built from inputs %s, sources are now %s): run `go generate ./clients/web` and commit clients/web/static", got, sum)
	}
	if os.Getenv("LIAISON_WEB_REBUILD") == "" {
		return
	}
	out := filepath.Join(t.TempDir(), "liaison.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", out, "./clients/web/app")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	fresh, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committedWasm(t)) {
		t.Fatal("a rebuild differs from the committed build (another Go version?): run `go generate ./clients/web`")
	}
}

func committedWasm(t *testing.T) []byte {
	t.Helper()
	gz, err := static.ReadFile("static/liaison.wasm.gz")
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func get(t *testing.T, h http.Handler, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// The page, its files and the wasm (gzipped or not) are served with a
// strict content security policy; anything else is not found.
func TestHandler(t *testing.T) {
	h := Handler()
	page := get(t, h, "/")
	if page.Code != 200 || !strings.Contains(page.Body.String(), `src="web/app.js"`) || !strings.HasPrefix(page.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %q", page.Code, page.Header())
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP %q", csp)
	}
	for _, f := range []string{"app.js", "style.css", "wasm_exec.js"} {
		if w := get(t, h, "/web/"+f); w.Code != 200 || w.Body.Len() == 0 {
			t.Fatalf("%s: %d", f, w.Code)
		}
	}
	raw := committedWasm(t)
	gz := get(t, h, "/web/liaison.wasm", "Accept-Encoding", "br, gzip")
	if gz.Code != 200 || gz.Header().Get("Content-Encoding") != "gzip" || gz.Header().Get("Content-Type") != "application/wasm" {
		t.Fatalf("gzipped wasm: %d %q", gz.Code, gz.Header())
	}
	plain := get(t, h, "/web/liaison.wasm", "Accept-Encoding", "gzip;q=0")
	if plain.Header().Get("Content-Encoding") != "" || !bytes.Equal(plain.Body.Bytes(), raw) {
		t.Fatalf("plain wasm: encoding %q, %d bytes, want %d", plain.Header().Get("Content-Encoding"), plain.Body.Len(), len(raw))
	}
	if !bytes.HasPrefix(raw, []byte("\x00asm")) {
		t.Fatal("the build is not WebAssembly")
	}
	t.Logf("liaison.wasm: %d bytes, %d gzipped", len(raw), gz.Body.Len())
	for _, p := range []string{"/web/", "/web/inputs.sha256", "/web/liaison.wasm.gz", "/web/../doc.go", "/web/static/app.js", "/index.html"} {
		if w := get(t, h, p); w.Code != http.StatusNotFound {
			t.Fatalf("%s: %d, want 404", p, w.Code)
		}
	}
	etag := page.Header().Get("ETag")
	if w := get(t, h, "/", "If-None-Match", etag); w.Code != http.StatusNotModified {
		t.Fatalf("revalidation: %d", w.Code)
	}
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", w.Code)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for ae, want := range map[string]bool{
		"": false, "gzip": true, "br, gzip": true, "GZIP": true, "gzip;q=0": false, "gzip; q=0.5": true,
		"deflate": false, "gzip;q=0.0": false, "identity, gzip;q=1": true,
	} {
		if got := acceptsGzip(ae); got != want {
			t.Errorf("acceptsGzip(%q) = %v", ae, got)
		}
	}
}

// acceptsGzip reads a client's header: any value is answered without a
// panic, and a value without "gzip" never selects it.
func FuzzAcceptsGzip(f *testing.F) {
	for _, s := range []string{"", "gzip", "gzip;q=0", "br, gzip;q=0.5", "gzip;q=", "gzip;q=NaN", ";;,,", "gzip;q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ae string) {
		if acceptsGzip(ae) && !strings.Contains(strings.ToLower(ae), "gzip") {
			t.Fatalf("%q accepted as gzip", ae)
		}
	})
}
