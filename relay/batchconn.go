package relay

import (
	"net"

	"liaison/internal/netbatch"
)

// BatchListener wraps ln so that the relay can send the frames queued for a
// connection in one write (one system call) instead of one write per frame.
// Wrap the plain TCP listener, under any TLS listener; connections that do
// not come through it are written frame by frame.
func BatchListener(ln net.Listener) net.Listener { return netbatch.Listener(ln) }
