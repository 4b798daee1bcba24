package relay

import "sync"

// hub maps operations to the subscriptions on this node.
type hub struct {
	mu   sync.RWMutex
	subs map[string]map[*subscription]struct{}
}

func newHub() *hub { return &hub{subs: make(map[string]map[*subscription]struct{})} }

func (h *hub) add(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[s.op]
	if m == nil {
		m = make(map[*subscription]struct{})
		h.subs[s.op] = m
	}
	m[s] = struct{}{}
}

func (h *hub) remove(s *subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.subs[s.op]; m != nil {
		delete(m, s)
		if len(m) == 0 {
			delete(h.subs, s.op)
		}
	}
}

// announce offers committed batches to every subscription of their
// operation. It runs on the Log's commit path and never blocks on a client.
func (h *hub) announce(bs []Batch) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	for i := range bs {
		a := announcement{Batch: &bs[i]}
		for s := range h.subs[bs[i].Op] {
			s.offer(&a)
		}
	}
}

// announcement is a committed batch on its way to the subscribers of its
// operation. Its deliver frames are encoded once, on first use, and shared
// by every subscriber that takes the whole batch (frames are never changed
// after encoding). offer is called sequentially, so no lock is needed.
type announcement struct {
	*Batch
	frames []outFrame
	err    error
	done   bool
}

func (a *announcement) wholeFrames(target int) ([]outFrame, error) {
	if !a.done {
		a.frames, a.err = deliverFrames(a.Op, a.Seq, a.Prev, a.Envelopes, a.Kinds, a.Classes, target, false)
		a.done = true
	}
	return a.frames, a.err
}
