package main

import "testing"

// TestQuickstart runs the whole quickstart: it fails if any step does.
func TestQuickstart(t *testing.T) {
	if err := run(); err != nil {
		t.Fatal(err)
	}
}
