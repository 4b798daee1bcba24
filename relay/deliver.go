package relay

import (
	"slices"
	"sync"

	"liaison/relay/wire"
)

// deliverOverhead is a generous bound on a deliver frame's bytes besides
// its envelopes; envOverhead on each envelope's CBOR header.
const (
	deliverOverhead = 256
	envOverhead     = 9
)

// deliverTarget is the largest size deliver frames are packed to. A frame
// may exceed it only to carry a single entry larger than it (a big roster
// commit), and never exceeds wire.MaxServerFrame.
const deliverTarget = 1 << 20

// liveTarget is the size the deliver frames of a committed batch, shared by
// every live subscriber, are packed to: a quarter of the per-connection
// queue (at least 16 KiB, at most deliverTarget), so that a subscriber whose
// queue has room takes a big batch whole or in part instead of falling back
// to reading the log, which costs a log read and an encoding per
// subscriber.
func liveTarget(queueBytes int) int {
	return min(max(queueBytes/4, 16<<10), deliverTarget)
}

// outFrame is an encoded frame in a connection's outbound queue, with what
// the writer needs to order it and to record delivery.
type outFrame struct {
	b []byte
	// buf, when set, is the framePool buffer b lies in: the frame belongs
	// to one connection, whose writer returns it once written.
	buf *[]byte
	op  string // the operation the frame concerns; "" for none
	// last is, for a deliver frame, the sequence of its last entry (0 for
	// other frames); class the highest wire.Class among its entries.
	last  uint64
	class uint8
}

// framePool holds the buffers of deliver frames that one subscriber reads
// from the log (catching up): each is written once and returned, so a
// subscriber catching up reuses a few buffers instead of allocating (and
// zeroing) one per frame.
var framePool sync.Pool

// maxPooledFrame bounds the buffers framePool keeps.
const maxPooledFrame = deliverTarget + 64<<10

// release returns a pooled frame's buffer; the frame must not be used
// afterwards.
func (f *outFrame) release() {
	if f.buf != nil && cap(*f.buf) <= maxPooledFrame {
		*f.buf = (*f.buf)[:0]
		framePool.Put(f.buf)
	}
	f.buf, f.b = nil, nil
}

// ctlFrame wraps a non-deliver frame of operation op ("" for none).
func ctlFrame(b []byte, op string) outFrame { return outFrame{b: b, op: op} }

// deliverFrames encodes envs (sequences seq, seq+1, ...; kinds[i] the kind
// of envs[i], or nil for all messages; classes likewise, nil for all
// routine) as deliver frames, each under target bytes (or holding one
// larger entry) and wire.MaxDeliverEntries. With pooled, the frames are
// encoded into framePool buffers, for a single connection's writer to
// release.
func deliverFrames(op string, seq uint64, prev [HashLen]byte, envs [][]byte, kinds, classes []uint8, target int, pooled bool) ([]outFrame, error) {
	var out []outFrame
	var chain wire.Chainer
	for len(envs) > 0 {
		n, size := 0, deliverOverhead
		for n < len(envs) && n < wire.MaxDeliverEntries {
			add := len(envs[n]) + envOverhead
			if n > 0 && size+add > target {
				break
			}
			size += add
			n++
		}
		d := &wire.Deliver{Op: op, Seq: seq, Prev: prev[:], Envelopes: envs[:n]}
		if len(kinds) > 0 && slices.ContainsFunc(kinds[:n], func(k uint8) bool { return k != 0 }) {
			d.Kinds = kinds[:n]
		}
		var bp *[]byte // the pooled buffer, if any
		var dst []byte
		if pooled {
			if bp, _ = framePool.Get().(*[]byte); bp == nil {
				bp = new([]byte)
			}
			dst = (*bp)[:0]
		}
		b, err := wire.AppendDeliver(dst, d)
		if err != nil {
			return nil, err
		}
		if bp != nil {
			*bp = b
		}
		of := outFrame{b: b, buf: bp, op: op, last: seq + uint64(n) - 1}
		if len(classes) >= n {
			of.class = slices.Max(classes[:n])
		}
		out = append(out, of)
		if n < len(envs) {
			for _, e := range envs[:n] {
				prev = chain.Next(prev, e)
			}
		}
		seq += uint64(n)
		envs = envs[n:]
		if len(kinds) > 0 {
			kinds = kinds[n:]
		}
		if len(classes) >= n {
			classes = classes[n:]
		}
	}
	return out, nil
}

// prioritize reorders a batch of queued frames so that frames carrying
// higher classes go first, without ever changing the order of two frames of
// the same operation: a frame's effective class is the highest class of
// itself and of every later frame of its operation in the batch, and the
// batch is sorted stably by it. So flash traffic of one operation overtakes
// routine traffic of others, while each operation's frames (subscribed,
// deliver, ack, error) keep their order, and with them the gap-free,
// duplicate-free sequence order of every subscription.
func prioritize(q []outFrame) {
	hi := false
	for i := range q {
		if q[i].class > 0 {
			hi = true
			break
		}
	}
	if !hi || len(q) < 2 {
		return
	}
	eff := make(map[string]uint8)
	keys := make([]uint8, len(q))
	for i := len(q) - 1; i >= 0; i-- {
		k := max(eff[q[i].op], q[i].class)
		eff[q[i].op] = k
		keys[i] = k
	}
	idx := make([]int, len(q))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return int(keys[b]) - int(keys[a]) })
	out := make([]outFrame, len(q))
	for i, j := range idx {
		out[i] = q[j]
	}
	copy(q, out)
}

func chainNext(prev [HashLen]byte, env []byte) [HashLen]byte { return wire.ChainNext(prev, env) }

func frameBytes(fs []outFrame) int {
	n := 0
	for _, f := range fs {
		n += len(f.b)
	}
	return n
}
