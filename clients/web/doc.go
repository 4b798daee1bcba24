// Package web serves Liaison's web client: a page, its script and style, and
// the Go client (crypto, client library, session) compiled to WebAssembly
// from ./app. Everything is embedded in the binary that serves it (relayd
// mounts Handler at /), so the client needs no other host; no crypto runs in
// JavaScript.
//
// # How the WebAssembly reaches `go run ./cmd/relayd`
//
// The build is committed: static/liaison.wasm.gz (gzip of a reproducible
// `GOOS=js GOARCH=wasm go build -trimpath -ldflags="-s -w -buildid="`),
// static/wasm_exec.js from the same Go root, and static/inputs.sha256, the
// hash of the build's inputs (internal/inputs). `go generate ./clients/web`
// remakes all three. Committing it is what lets `go run ./cmd/relayd` serve
// the client on a fresh machine with no setup and no network: go:embed
// cannot run a build, and building at start-up would need a Go toolchain
// where relayd runs. The cost is about 2 MiB per rebuild in the repository.
// TestBuildIsFresh fails, naming the command, when a Go file the client is
// built from (this module's packages it imports) or a dependency version
// changed since the committed build; it does not rebuild, so it costs one
// `go list`. Set LIAISON_WEB_REBUILD=1 to also rebuild and compare bytes.
//
// The wasm is served gzipped (Content-Encoding) to browsers that accept it,
// which every current browser does, and decompressed for others.
package web

//go:generate go run ./internal/webbuild
