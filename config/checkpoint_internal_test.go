package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

// encodeCheckpoint writes what json.Unmarshal reads back as the same
// values, escapes and values that are not UTF-8 included.
func TestEncodeCheckpointReadsBack(t *testing.T) {
	c := Content{"a": "x\"y\\z\n\t\r\x01\x1f<>&\u2028é", "b\x00": "", "bad": "\xff\xfe", "k\xffey": "v"}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	if err := encodeCheckpoint(bw, c); err != nil {
		t.Fatal(err)
	}
	bw.Flush()
	var got map[string]text
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err, buf.String())
	}
	want, _ := json.Marshal(map[string]text{"a": text(c["a"]), "b\x00": "", "bad": "\xff\xfe", "k\xffey": "v"})
	var w2 map[string]text
	json.Unmarshal(want, &w2)
	if len(got) != len(w2) {
		t.Fatal(got, w2)
	}
	for k, v := range w2 {
		if got[k] != v {
			t.Fatalf("%q: %q vs %q", k, got[k], v)
		}
	}
}
