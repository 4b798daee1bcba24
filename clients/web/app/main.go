//go:build js && wasm

// Command app is Liaison's web client compiled to WebAssembly: the same Go
// crypto, client library and session code as the CLI, running in the
// browser. It exposes a small API to the page's script as the global object
// `liaison` (see api.go) and calls `liaisonReady()` when it is loaded. The
// page's script draws the interface and holds no key and no crypto.
package main

import "syscall/js"

func main() {
	a := newApp()
	js.Global().Set("liaison", a.exports())
	if f := js.Global().Get("liaisonReady"); f.Type() == js.TypeFunction {
		f.Invoke()
	}
	select {} // serve calls from the page for its lifetime
}
