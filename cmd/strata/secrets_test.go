package main

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/strataconf/strata/config"
)

// filemode FILE PERM fails unless FILE's permission bits are PERM (octal,
// like 0600).
func cmdFilemode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: filemode FILE PERM")
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	if got := fi.Mode().Perm(); uint64(got) != want {
		ts.Fatalf("%s has mode %04o, want %04o", args[0], got, want)
	}
}

// dropkey FILE ID removes the key ID from the key file FILE (as a person
// editing it would), keeping its mode; the current key must be another.
func cmdDropkey(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: dropkey FILE ID")
	}
	file := ts.MkAbs(args[0])
	b, err := os.ReadFile(file)
	ts.Check(err)
	var kf struct {
		Current string           `json:"current"`
		Keys    []map[string]any `json:"keys"`
	}
	ts.Check(json.Unmarshal(b, &kf))
	if kf.Current == args[1] {
		ts.Fatalf("%s is the current key of %s", args[1], args[0])
	}
	var keep []map[string]any
	for _, k := range kf.Keys {
		if k["id"] != args[1] {
			keep = append(keep, k)
		}
	}
	if len(keep) == len(kf.Keys) {
		ts.Fatalf("%s has no key %s", args[0], args[1])
	}
	kf.Keys = keep
	b, err = json.MarshalIndent(kf, "", "  ")
	ts.Check(err)
	ts.Check(os.WriteFile(file, b, 0o600))
}

func TestKeyUseLine(t *testing.T) {
	for _, tc := range []struct {
		use  config.KeyUse
		want string
	}{
		{config.KeyUse{}, "no value in data keys is sealed; no value in release records uses an old key"},
		{config.KeyUse{Data: map[string]int{"k2": 1}, Releases: map[string]int{"k2": 2}},
			"1 value in data keys uses key k2; no value in release records uses an old key"},
		{config.KeyUse{Data: map[string]int{"k2": 3}, Releases: map[string]int{"k2": 3, "k1": 5, "k0": 1}},
			"3 values in data keys use key k2; 6 values in release records still use old keys: k1 (5), k0 (1)"},
		{config.KeyUse{Data: map[string]int{"k1": 2}, Releases: map[string]int{"k1": 2}},
			"2 values in data keys still use old keys: k1 (2); 2 values in release records still use old keys: k1 (2)"},
		{config.KeyUse{Data: map[string]int{"k2": 1, "k1": 2}, Releases: map[string]int{"k1": 1}},
			"3 values in data keys: 1 uses key k2, 2 still use old keys: k1 (2); 1 value in release records still uses old keys: k1 (1)"},
	} {
		if got := keyUseLine(&tc.use, "k2"); got != tc.want {
			t.Errorf("keyUseLine(%v)\n got %q\nwant %q", tc.use, got, tc.want)
		}
	}
}
