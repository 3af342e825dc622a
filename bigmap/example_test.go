package bigmap_test

import (
	"fmt"

	"github.com/strataconf/strata/bigmap"
)

// A configuration field of many entries is a bigmap.Map; Strata fills it
// from P/data/limits/<tenant> keys. A program reads it with Get, Len and
// All, and changes make new maps without touching the old one.
func ExampleMap() {
	type Config struct {
		Limits bigmap.Map[int] `koanf:"limits" validate:"dive,min=0"`
	}
	cfg := Config{Limits: bigmap.Of(map[string]int{"acme": 100, "globex": 20})}

	next := cfg.Limits.With("initech", 5).Without("globex")
	limit, ok := next.Get("initech")
	fmt.Println(limit, ok, next.Len())
	fmt.Println(cfg.Limits) // unchanged
	fmt.Println(next)
	// Output:
	// 5 true 2
	// map[acme:100 globex:20]
	// map[acme:100 initech:5]
}
