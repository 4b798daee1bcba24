//go:build js && wasm

package main

import (
	"fmt"
	"syscall/js"
)

// async exposes fn to JavaScript as a function returning a Promise: fn runs
// on its own goroutine (never on the browser's event loop, which it would
// block) and the promise resolves with its result or rejects with an Error
// carrying its message.
func async(fn func(args []js.Value) (any, error)) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) any {
		args = append([]js.Value(nil), args...)
		return js.Global().Get("Promise").New(js.FuncOf(func(_ js.Value, pa []js.Value) any {
			resolve, reject := pa[0], pa[1]
			go func() {
				defer func() {
					if r := recover(); r != nil {
						reject.Invoke(js.Global().Get("Error").New(fmt.Sprint("internal error: ", r)))
					}
				}()
				v, err := fn(args)
				if err != nil {
					reject.Invoke(js.Global().Get("Error").New(err.Error()))
					return
				}
				resolve.Invoke(js.ValueOf(v))
			}()
			return nil
		}))
	})
}

// syncFn exposes fn to JavaScript as a plain function; fn must not block.
func syncFn(fn func(args []js.Value) any) js.Func {
	return js.FuncOf(func(_ js.Value, args []js.Value) any { return js.ValueOf(fn(args)) })
}

// arg returns args[i] as a string, "" when absent.
func arg(args []js.Value, i int) string {
	if i >= len(args) || args[i].Type() != js.TypeString {
		return ""
	}
	return args[i].String()
}
