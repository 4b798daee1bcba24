package cluster

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func samplePending() []*pending {
	return []*pending{
		{pub: Publish{Op: "op-1", MsgID: [MsgIDLen]byte{1}, Class: 2, Envelope: []byte("hello")}},
		{pub: Publish{Op: "op-2", MsgID: [MsgIDLen]byte{2}, Envelope: bytes.Repeat([]byte{0xff}, 300)}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	ps := samplePending()
	b := encodePublishes(1700000000123, ps)
	c, err := decodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.timeMS != 1700000000123 || len(c.pubs) != len(ps) {
		t.Fatalf("%+v", c)
	}
	for i, p := range c.pubs {
		w := ps[i].pub
		if p.Op != w.Op || p.MsgID != w.MsgID || p.Class != w.Class || !bytes.Equal(p.Envelope, w.Envelope) {
			t.Fatalf("publish %d: %+v != %+v", i, p, w)
		}
	}
}

func TestControlCommandsRoundTrip(t *testing.T) {
	c, err := decodeCommand(encodeRetention("op-1", Retention{MaxAge: 90 * time.Minute, MaxCount: 7}, false))
	if err != nil || c.retention == nil || c.retention.op != "op-1" || c.retention.policy.MaxAge != 90*time.Minute || c.retention.policy.MaxCount != 7 || c.retention.clear {
		t.Fatalf("retention: %+v %v", c.retention, err)
	}
	if c, err = decodeCommand(encodeRetention("op-1", Retention{}, true)); err != nil || !c.retention.clear {
		t.Fatalf("clear: %+v %v", c.retention, err)
	}
	if c, err = decodeCommand(encodeCompact("op-2", 1234)); err != nil || c.compact == nil || c.compact.op != "op-2" || c.compact.before != 1234 {
		t.Fatalf("compact: %+v %v", c.compact, err)
	}
}

func TestCommandRejects(t *testing.T) {
	good := encodePublishes(1, samplePending())
	cases := map[string][]byte{
		"empty":         nil,
		"unknown kind":  {9, 1, 1},
		"zero count":    {commandPublish, 1, 0},
		"huge count":    {commandPublish, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"truncated":     good[:len(good)-1],
		"trailing":      append(append([]byte{}, good...), 0),
		"zero op len":   {commandPublish, 1, 1, 0},
		"long op":       {commandPublish, 1, 1, 0xff, 0x7f},
		"bad varint":    {commandPublish, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
		"compact 1":     encodeCompact("op", 1),
		"compact tail":  append(encodeCompact("op", 5), 0),
		"compact no op": {commandCompact, 0, 5},
		"policy flags":  append(encodeRetention("op", Retention{}, false)[:5], 0, 0, 2),
		"policy age":    {commandRetention, 2, 'o', 'p', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0},
		"policy short":  encodeRetention("op", Retention{MaxCount: 3}, false)[:5],
	}
	for name, b := range cases {
		if _, err := decodeCommand(b); !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: got %v", name, err)
		}
	}
}

// FuzzDecodeCommand: the FSM's decoder never panics, and what it accepts
// re-encodes to a command that decodes to the same publishes.
func FuzzDecodeCommand(f *testing.F) {
	f.Add(encodePublishes(1, samplePending()))
	f.Add([]byte{commandPublish, 1, 1, 1, 'a'})
	f.Add(encodeAdminCommand(commandAdminAction, 7, []byte{1, 2, 3}))
	f.Add(encodeAdminCommand(commandNodeJoin, 7, []byte{2, 'n', '2', 0, 0, 0, 0}))
	f.Add(encodeRetention("op", Retention{MaxAge: time.Hour, MaxCount: 9}, false))
	f.Add(encodeCompact("op", 77))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeCommand(b)
		if err != nil {
			return
		}
		switch {
		case c.body != nil:
			c2, err := decodeCommand(encodeAdminCommand(c.kind, c.timeMS, c.body))
			if err != nil || c2.kind != c.kind || c2.timeMS != c.timeMS || !bytes.Equal(c2.body, c.body) {
				t.Fatalf("admin command round trip: %v", err)
			}
			return
		case c.retention != nil:
			r := c.retention
			c2, err := decodeCommand(encodeRetention(r.op, r.policy, r.clear))
			if err != nil || *c2.retention != *r {
				t.Fatalf("retention round trip: %+v %v", c2.retention, err)
			}
			return
		case c.compact != nil:
			c2, err := decodeCommand(encodeCompact(c.compact.op, c.compact.before))
			if err != nil || *c2.compact != *c.compact {
				t.Fatalf("compact round trip: %+v %v", c2.compact, err)
			}
			return
		}
		ps := make([]*pending, len(c.pubs))
		for i := range c.pubs {
			ps[i] = &pending{pub: c.pubs[i]}
		}
		c2, err := decodeCommand(encodePublishes(c.timeMS, ps))
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if c2.timeMS != c.timeMS || len(c2.pubs) != len(c.pubs) {
			t.Fatal("round trip changed the command")
		}
		for i := range c.pubs {
			p, q := c.pubs[i], c2.pubs[i]
			if p.Op != q.Op || p.MsgID != q.MsgID || p.Class != q.Class || !bytes.Equal(p.Envelope, q.Envelope) {
				t.Fatalf("publish %d changed in a round trip", i)
			}
		}
	})
}

// The FSM's chain hash is the protocol's (docs/protocol.md gives this
// vector; relay/wire checks the same one).
func TestChainVector(t *testing.T) {
	got := chainNext([HashLen]byte{}, []byte("hello"))
	if hex.EncodeToString(got[:]) != "a41de667c15557cbd8acdd71ef0fef5dc73561374baed8330f8adb0e1424cd62" {
		t.Fatalf("chain_1(hello) = %x", got)
	}
}

// The leader stamps admin proposals with its clock, passes control
// commands through, and refuses anything else before it reaches the log.
func TestLeaderCommand(t *testing.T) {
	now := time.UnixMilli(1700000000123)
	cmd, err := leaderCommand([]byte{commandNodeJoin, 'x', 'y'}, now)
	if err != nil {
		t.Fatal(err)
	}
	c, err := decodeCommand(cmd)
	if err != nil || c.kind != commandNodeJoin || c.timeMS != now.UnixMilli() || string(c.body) != "xy" {
		t.Fatalf("admin proposal: %+v, %v", c, err)
	}
	ret := encodeRetention("op", Retention{MaxCount: 3}, false)
	if cmd, err := leaderCommand(ret, now); err != nil || !bytes.Equal(cmd, ret) {
		t.Fatalf("retention proposal: %x, %v", cmd, err)
	}
	for name, req := range map[string][]byte{
		"empty":             nil,
		"admin, no body":    {commandAdminAction},
		"publish":           encodePublishes(1, samplePending()),
		"membership":        {commandMembership, memberAdd},
		"truncated compact": encodeCompact("op", 5)[:3],
	} {
		if _, err := leaderCommand(req, now); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}
