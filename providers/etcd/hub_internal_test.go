package etcd

import (
	"context"
	"fmt"
	"maps"
	"reflect"
	"testing"
)

// put and del build one-revision updates for the queue tests.
func put(rev int64, kv ...string) Update {
	u := Update{Revision: rev}
	for i := 0; i < len(kv); i += 2 {
		u.Events = append(u.Events, Event{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return u
}

func del(rev int64, keys ...string) Update {
	u := Update{Revision: rev}
	for _, k := range keys {
		u.Events = append(u.Events, Event{Key: k, Deleted: true})
	}
	return u
}

// drain pops every queued update without waiting.
func drain(t *testing.T, s *sub) []Update {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out []Update
	for {
		s.mu.Lock()
		n := len(s.q)
		s.mu.Unlock()
		if n == 0 {
			return out
		}
		u, ok := s.next(ctx)
		if !ok {
			t.Fatal("next failed")
		}
		out = append(out, u)
	}
}

func pushAll(s *sub, us ...Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		s.push(newEntry(u))
	}
}

// Below the bounds every transaction is its own update, chained by From.
func TestSubBelowBoundOneUpdatePerTransaction(t *testing.T) {
	s := newSub(10, 0, 0)
	var us []Update
	for i := range MaxPendingUpdates {
		us = append(us, put(int64(11+i), "/p/data/k", fmt.Sprint(i)))
	}
	pushAll(s, us...)
	got := drain(t, s)
	if len(got) != MaxPendingUpdates {
		t.Fatalf("%d updates, want %d", len(got), MaxPendingUpdates)
	}
	prev := int64(10)
	for i, u := range got {
		if u.From != prev || u.Revision != int64(11+i) || len(u.Events) != 1 || u.Resync != nil {
			t.Fatalf("update %d: %+v (previous revision %d)", i, u, prev)
		}
		prev = u.Revision
	}
}

// A caller gets no update at or below its revision, and its From is its
// own previous revision.
func TestSubSkipsWhatItHas(t *testing.T) {
	s := newSub(20, 0, 0)
	pushAll(s, put(15, "k", "a"), put(20, "k", "b"), put(24, "k", "c"))
	got := drain(t, s)
	if len(got) != 1 || got[0].From != 20 || got[0].Revision != 24 {
		t.Fatalf("got %+v", got)
	}
}

// Past the bound the queue becomes one update: each key once, last value
// wins, deletes stay deletes, sorted by key, From..Revision of the whole.
func TestSubCoalescesPastCountBound(t *testing.T) {
	s := newSub(1, 4, 0)
	pushAll(s,
		put(2, "b", "1", "a", "1"),
		put(3, "c", "1"),
		del(4, "a"),
		put(5, "b", "2", "d", "1"),
	)
	if n := len(s.q); n != 4 {
		t.Fatalf("%d queued at the bound, want 4 (no merge yet)", n)
	}
	pushAll(s, put(7, "d", "2", "e", "1"))
	got := drain(t, s)
	want := []Update{{From: 1, Revision: 7, Events: []Event{
		{Key: "a", Deleted: true},
		{Key: "b", Value: []byte("2")},
		{Key: "c", Value: []byte("1")},
		{Key: "d", Value: []byte("2")},
		{Key: "e", Value: []byte("1")},
	}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	// The merged update applied to the content at From is the content
	// at Revision.
	before := &Data{Revision: 1, KVs: map[string][]byte{"a": []byte("0"), "x": []byte("0")}}
	after := before.Apply(got[0])
	wantKVs := map[string][]byte{"b": []byte("2"), "c": []byte("1"), "d": []byte("2"), "e": []byte("1"), "x": []byte("0")}
	if !maps.EqualFunc(after.KVs, wantKVs, func(a, b []byte) bool { return string(a) == string(b) }) {
		t.Fatalf("after: %q", after.KVs)
	}
}

func TestSubCoalescesPastByteBound(t *testing.T) {
	s := newSub(0, 0, 10)
	// 5 bytes, then 5 + 5 behind it: at the bound.
	pushAll(s, put(1, "k", "1234"), put(2, "k", "5678"), put(3, "i", "1234"))
	if n := len(s.q); n != 3 {
		t.Fatalf("%d queued, want 3", n)
	}
	pushAll(s, put(4, "j", "x"))
	if n := len(s.q); n != 1 || s.bytes != 12 {
		t.Fatalf("%d queued, %d bytes: want one merged update of 12 bytes", n, s.bytes)
	}
	// The merged update is left out of the count: 10 more bytes wait
	// beside its 12 before the next merge.
	pushAll(s, put(5, "k", "abcd"), put(6, "k", "efgh"))
	if n := len(s.q); n != 3 {
		t.Fatalf("%d queued, want 3", n)
	}
	pushAll(s, put(7, "j", "y"))
	got := drain(t, s)
	want := []Update{{From: 0, Revision: 7, Events: []Event{{Key: "i", Value: []byte("1234")}, {Key: "j", Value: []byte("y")}, {Key: "k", Value: []byte("efgh")}}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if s.bytes != 0 {
		t.Fatalf("bytes %d after draining", s.bytes)
	}
}

// A Resync in a merged queue replaces everything before it; the changes
// after it are applied to its content.
func TestSubCoalesceResync(t *testing.T) {
	s := newSub(1, 3, 0)
	resync := &Data{Revision: 9, KVs: map[string][]byte{"a": []byte("r"), "b": []byte("r")}}
	pushAll(s,
		put(2, "z", "1"),
		Update{Revision: 9, Resync: resync},
		put(10, "a", "2"),
		del(11, "b"),
	)
	got := drain(t, s)
	if len(got) != 1 {
		t.Fatalf("got %d updates", len(got))
	}
	u := got[0]
	if u.From != 1 || u.Revision != 11 || u.Resync == nil || len(u.Events) != 0 {
		t.Fatalf("got %+v", u)
	}
	if u.Resync.Revision != 11 || len(u.Resync.KVs) != 1 || string(u.Resync.KVs["a"]) != "2" {
		t.Fatalf("resync content %d %q", u.Resync.Revision, u.Resync.KVs)
	}
	if len(resync.KVs) != 2 {
		t.Fatal("the queued Resync's data was modified")
	}
	// A Resync last: it is the merged update.
	s = newSub(1, 2, 0)
	pushAll(s, put(2, "z", "1"), put(3, "z", "2"), Update{Revision: 9, Resync: resync})
	if got := drain(t, s); len(got) != 1 || got[0].Resync != resync || got[0].From != 1 || got[0].Revision != 9 {
		t.Fatalf("got %+v", got)
	}
}

// The ring keeps the newest ReplayUpdates updates; a joiner inside it is
// replayed what it missed, one older is not covered, and a Resync covers
// every revision.
func TestHubRing(t *testing.T) {
	h := &hub{subs: make(map[*sub]struct{}), rev: 100, ringFrom: 100}
	for i := range ReplayUpdates + 10 {
		h.publish(put(int64(101+i), "k", fmt.Sprint(i)))
	}
	if len(h.ring) != ReplayUpdates || h.ringFrom != 110 || h.rev != int64(100+ReplayUpdates+10) {
		t.Fatalf("ring %d from %d rev %d", len(h.ring), h.ringFrom, h.rev)
	}
	if ok, _ := h.add(newSub(109, 0, 0), 109, nil); ok {
		t.Fatal("revision 109 covered; 110 left the ring")
	}
	s := newSub(300, 0, 0)
	if ok, _ := h.add(s, 300, nil); !ok {
		t.Fatal("revision 300 not covered")
	}
	got := drain(t, s)
	if len(got) != int(h.rev-300) || got[0].From != 300 || got[0].Revision != 301 {
		t.Fatalf("replayed %d, first %+v", len(got), got[0])
	}
	// Ahead of the hub: nothing now, nothing up to its revision later.
	ahead := newSub(h.rev+5, 0, 0)
	h.add(ahead, h.rev+5, nil)
	h.publish(put(h.rev+3, "k", "x"))
	h.publish(put(h.rev+4, "k", "y"))
	ahead.mu.Lock()
	n := len(ahead.q)
	ahead.mu.Unlock()
	if n != 1 {
		t.Fatalf("ahead: %d queued, want 1", n)
	}
	if u := drain(t, ahead)[0]; u.From != h.rev-2 || u.Revision != h.rev {
		t.Fatalf("ahead got %+v (hub at %d)", u, h.rev)
	}
	// A Resync covers every revision.
	d := &Data{Revision: h.rev + 1, KVs: map[string][]byte{"k": []byte("r")}}
	h.publish(Update{From: h.rev, Revision: h.rev + 1, Resync: d})
	if len(h.ring) != 1 {
		t.Fatalf("ring after a resync: %d", len(h.ring))
	}
	old := newSub(5, 0, 0)
	ok, replayed := h.add(old, 5, nil)
	if !ok || !replayed {
		t.Fatalf("old joiner after a resync: ok %v replayed %v", ok, replayed)
	}
	if got := drain(t, old); len(got) != 1 || got[0].Resync != d || got[0].From != 5 {
		t.Fatalf("old joiner got %+v", got)
	}
	// A pre-read Resync goes first, then what follows it.
	h.publish(put(d.Revision+1, "k", "after"))
	mine := &Data{Revision: d.Revision, KVs: map[string][]byte{"k": []byte("r")}}
	j := newSub(2, 0, 0)
	if ok, _ := h.add(j, mine.Revision, &Update{From: 2, Revision: mine.Revision, Resync: mine}); !ok {
		t.Fatal("not covered")
	}
	got = drain(t, j)
	if len(got) != 2 || got[0].Resync != mine || got[0].From != 2 || got[1].From != mine.Revision || got[1].Revision != d.Revision+1 {
		t.Fatalf("pre-read joiner got %+v", got)
	}
}

// The ring's byte bound drops old updates too.
func TestHubRingBytes(t *testing.T) {
	h := &hub{subs: make(map[*sub]struct{})}
	big := string(make([]byte, ReplayBytes/4))
	for i := range 6 {
		h.publish(put(int64(i+1), "k", big))
	}
	if h.ringBytes > ReplayBytes || len(h.ring) != 3 || h.ringFrom != 3 {
		t.Fatalf("ring %d updates %d bytes from %d", len(h.ring), h.ringBytes, h.ringFrom)
	}
}

// next returns when ctx ends, and a push wakes a waiting next.
func TestSubNextWaits(t *testing.T) {
	s := newSub(0, 0, 0)
	done := make(chan Update)
	go func() {
		u, _ := s.next(context.Background())
		done <- u
	}()
	pushAll(s, put(1, "k", "v"))
	if u := <-done; u.Revision != 1 {
		t.Fatalf("got %+v", u)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := s.next(ctx); ok {
		t.Fatal("next after ctx ended")
	}
}
