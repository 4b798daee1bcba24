package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// Files the page loads, under /web/.
var types = map[string]string{
	"app.js":       "text/javascript; charset=utf-8",
	"style.css":    "text/css; charset=utf-8",
	"wasm_exec.js": "text/javascript; charset=utf-8",
	"liaison.wasm": "application/wasm",
}

// Version identifies the embedded build: the hash of its inputs.
func Version() string {
	b, _ := static.ReadFile("static/inputs.sha256")
	return strings.TrimSpace(string(b))
}

// csp allows the page's own script and style, compiling WebAssembly, and
// WebSockets to any relay node the person lists; nothing else.
const csp = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the web client: the page at / and its files under /web/.
// Mount it for "GET /{$}" and "GET /web/".
func Handler() http.Handler {
	etag := `"` + Version() + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache") // revalidate with the ETag
		h.Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/web/")
		switch {
		case r.URL.Path == "/":
			serveFile(w, r, "static/index.html", "text/html; charset=utf-8")
		case ok && name == "liaison.wasm":
			serveWasm(w, r)
		case ok && types[name] != "" && path.Base(name) == name:
			serveFile(w, r, "static/"+name, types[name])
		default:
			http.NotFound(w, r)
		}
	})
}

func serveFile(w http.ResponseWriter, r *http.Request, name, ctype string) {
	b, err := static.ReadFile(name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", ctype)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

// serveWasm sends the gzipped build as it is to clients that accept gzip,
// and decompresses it for the others.
func serveWasm(w http.ResponseWriter, r *http.Request) {
	gz, err := static.ReadFile("static/liaison.wasm.gz")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/wasm")
	h.Add("Vary", "Accept-Encoding")
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		if r.Method != http.MethodHead {
			w.Write(gz)
		}
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		http.Error(w, "damaged build", http.StatusInternalServerError)
		return
	}
	io.Copy(w, zr)
}

// acceptsGzip reports whether an Accept-Encoding value accepts gzip with a
// non-zero quality.
func acceptsGzip(ae string) bool {
	for _, part := range strings.Split(ae, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		if !ok {
			return true
		}
		v, err := strconv.ParseFloat(q, 64)
		return err == nil && v > 0
	}
	return false
}
