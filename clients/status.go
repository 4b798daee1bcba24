package clients

// Status is what a user interface shows about a Client's connection.
type Status struct {
	// Connected is false while the client is reconnecting.
	Connected bool
	// Node is the relay node's id from its welcome frame ("" while
	// reconnecting).
	Node string
	// URL is the WebSocket URL of that node ("" while reconnecting).
	URL string
}

// Status returns the client's connection state now. It is cheap; a user
// interface may poll it.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return Status{}
	}
	return Status{Connected: true, Node: c.cur.node, URL: c.cur.url}
}
