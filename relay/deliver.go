package relay

import (
	"slices"

	"liaison/relay/wire"
)

// deliverOverhead is a generous bound on a deliver frame's bytes besides
// its envelopes; envOverhead on each envelope's CBOR header.
const (
	deliverOverhead = 256
	envOverhead     = 9
)

// deliverTarget is the size deliver frames are packed to. A frame may exceed
// it only to carry a single entry larger than it (a big roster commit), and
// never exceeds wire.MaxServerFrame.
const deliverTarget = 1 << 20

// deliverFrames encodes envs (sequences seq, seq+1, ...; kinds[i] the kind
// of envs[i], or nil for all messages) as deliver frames, each under
// deliverTarget (or holding one larger entry) and wire.MaxDeliverEntries.
func deliverFrames(op string, seq uint64, prev [HashLen]byte, envs [][]byte, kinds []uint8) ([][]byte, error) {
	var out [][]byte
	for len(envs) > 0 {
		n, size := 0, deliverOverhead
		for n < len(envs) && n < wire.MaxDeliverEntries {
			add := len(envs[n]) + envOverhead
			if n > 0 && size+add > deliverTarget {
				break
			}
			size += add
			n++
		}
		d := &wire.Deliver{Op: op, Seq: seq, Prev: prev[:], Envelopes: envs[:n]}
		if len(kinds) > 0 && slices.ContainsFunc(kinds[:n], func(k uint8) bool { return k != 0 }) {
			d.Kinds = kinds[:n]
		}
		b, err := wire.Encode(d)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
		if n < len(envs) {
			for _, e := range envs[:n] {
				prev = chainNext(prev, e)
			}
		}
		seq += uint64(n)
		envs = envs[n:]
		if len(kinds) > 0 {
			kinds = kinds[n:]
		}
	}
	return out, nil
}

func chainNext(prev [HashLen]byte, env []byte) [HashLen]byte { return wire.ChainNext(prev, env) }

func frameBytes(fs [][]byte) int {
	n := 0
	for _, f := range fs {
		n += len(f)
	}
	return n
}
