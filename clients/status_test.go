package clients

import (
	"testing"
	"time"

	"liaison/clients/fakerelay"
)

// Status names the node in use and its URL, is empty while reconnecting,
// and follows the client to the next relay when its node goes away.
func TestStatusFollowsTheNode(t *testing.T) {
	a := fakerelay.New("a")
	defer a.Close()
	b := newServer(t, "b")
	opts := testOpts()
	opts.ReconnectMin = 400 * time.Millisecond
	opts.ReconnectMax = 400 * time.Millisecond
	c := dialT(t, opts, a.URL, b.URL)
	if st := c.Status(); !st.Connected || st.Node != "a" || st.URL != a.URL {
		t.Fatalf("status %+v", st)
	}
	a.Close()
	sawDown := false
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := c.Status()
		if !st.Connected {
			sawDown = true
			if st.Node != "" || st.URL != "" {
				t.Fatalf("disconnected status names a node: %+v", st)
			}
		}
		if st.Connected && st.Node == "b" {
			if st.URL != b.URL {
				t.Fatalf("status %+v", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status still %+v", st)
		}
		time.Sleep(time.Millisecond) // polling a condition, bounded by the deadline
	}
	if !sawDown {
		t.Fatal("status never showed the client reconnecting")
	}
}
