package config

import (
	"strings"
	"testing"
)

// The writer cache's log of changes stays within its bounds by count and
// by bytes, keeps the newest changes, and says from which revision on it
// is complete.
func TestWriterCacheLogBounds(t *testing.T) {
	c := &writerCache{}
	big := strings.Repeat("x", 1<<20)
	for rev := int64(1); rev <= 40; rev++ {
		c.remember(rev, KeyChange{Key: "doc.json", Kind: Changed, Old: big, New: big})
		if c.logBytes > maxLogBytes || len(c.log) > maxLog {
			t.Fatalf("after %d changes the log holds %d changes, %d bytes", rev, len(c.log), c.logBytes)
		}
		if c.log[len(c.log)-1].rev != rev || c.logFrom != c.log[0].rev-1 && c.logFrom != 0 {
			t.Fatalf("after %d changes: newest %d, complete from %d, oldest %d", rev, c.log[len(c.log)-1].rev, c.logFrom, c.log[0].rev)
		}
	}
	for rev := int64(41); rev <= 41+2*maxLog; rev++ {
		c.remember(rev, KeyChange{Key: "k", Kind: Changed, Old: "a", New: "b"})
	}
	if len(c.log) > maxLog || c.log[len(c.log)-1].rev != 41+2*maxLog || c.logFrom != c.log[0].rev-1 {
		t.Fatalf("log of %d changes, newest %d, complete from %d, oldest %d", len(c.log), c.log[len(c.log)-1].rev, c.logFrom, c.log[0].rev)
	}
	huge := strings.Repeat("y", maxLogBytes+1)
	c = &writerCache{}
	c.remember(1, KeyChange{Key: "doc.json", Kind: Added, New: huge})
	if len(c.log) != 1 {
		t.Fatal("the newest change was dropped")
	}
}
