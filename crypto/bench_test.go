package crypto

import (
	"fmt"
	"testing"
)

func BenchmarkSeal1KiB(b *testing.B) {
	w := newWorld(b, "op-bench", []string{"alice", "bob"}, nil)
	pt := make([]byte, 1024)
	g := w.groups["alice"]
	b.SetBytes(1024)
	for b.Loop() {
		if _, err := g.Seal(pt, LogHead{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen1KiB(b *testing.B) {
	w := newWorld(b, "op-bench", []string{"alice", "bob"}, nil)
	pt := make([]byte, 1024)
	envs := make([][]byte, 0, 1024)
	g, r := w.groups["alice"], w.groups["bob"]
	b.SetBytes(1024)
	i := 0
	for b.Loop() {
		if i == len(envs) {
			b.StopTimer()
			envs, i = envs[:0], 0
			for range cap(envs) {
				e, _ := g.Seal(pt, LogHead{})
				envs = append(envs, e)
			}
			b.StartTimer()
		}
		if _, err := r.Open(envs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// benchGroup builds an n-member operation: genesis by member 0 and the
// state of member 1, without running n joins.
func benchGroup(b *testing.B, n int) (*Group, *Group, *Identity) {
	ids := make([]*Identity, n)
	var invites []Invite
	for i := range ids {
		var err error
		ids[i], err = NewIdentity(detRand(fmt.Sprint("bench", i)), fmt.Sprint("m", i))
		if err != nil {
			b.Fatal(err)
		}
		if i > 0 {
			invites = append(invites, Invite{ids[i].Token(), RoleOfficer})
		}
	}
	admin, gen, err := NewGroup(detRand("bench"), ids[0], "op-bench", invites)
	if err != nil {
		b.Fatal(err)
	}
	other, err := JoinGroup(ids[1], [][]byte{gen})
	if err != nil {
		b.Fatal(err)
	}
	return admin, other, ids[0]
}

func BenchmarkCommit(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("create/members=%d", n), func(b *testing.B) {
			admin, _, _ := benchGroup(b, n)
			rng := detRand("c")
			var size int
			for b.Loop() {
				c, err := admin.Commit(rng, KeyUpdate())
				if err != nil {
					b.Fatal(err)
				}
				size = len(c)
			}
			b.ReportMetric(float64(size), "commit-bytes")
		})
		b.Run(fmt.Sprintf("process/members=%d", n), func(b *testing.B) {
			admin, other, _ := benchGroup(b, n)
			c, err := admin.Commit(detRand("c"), KeyUpdate())
			if err != nil {
				b.Fatal(err)
			}
			state := save(b, other)
			for b.Loop() {
				b.StopTimer()
				g := restore(b, other.id, state)
				b.StartTimer()
				if err := g.ProcessCommit(c); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
