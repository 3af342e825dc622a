package config

import (
	"reflect"
	"testing"

	"github.com/strataconf/strata/bigmap"
)

type mapperRate struct {
	Rate int `koanf:"rate"`
}

// mapperConf holds Mappers (bigmap.Maps); mapperTwin is the same with Go maps.
type mapperConf struct {
	Tenants bigmap.Map[mapperRate]  `koanf:"tenants"`
	Ptrs    bigmap.Map[*mapperRate] `koanf:"ptrs"`
	Limits  bigmap.Map[int]         `koanf:"limits"`
}

type mapperTwin struct {
	Tenants map[string]mapperRate  `koanf:"tenants"`
	Ptrs    map[string]*mapperRate `koanf:"ptrs"`
	Limits  map[string]int         `koanf:"limits"`
}

// patchablePath follows a Mapper to its values as it follows a map: the
// keys of the map are data, the keys of its struct values must be spelled
// as their fields.
func TestPatchablePathMapper(t *testing.T) {
	tree := map[string]any{
		"tenants": map[string]any{"Acme": map[string]any{"rate": "1"}, "beta": map[string]any{"rate": "1", "Rate": "2"}},
		"ptrs":    map[string]any{"P": map[string]any{"rate": "1"}},
		"limits":  map[string]any{"K": "1"},
	}
	for path, want := range map[string]bool{
		"tenants.Acme.rate": true,
		"tenants.Acme.RATE": false, // a field's key in another case
		"tenants.beta.rate": false, // beside a key naming the same field
		"tenants.new.rate":  true,
		"ptrs.P.rate":       true,
		"ptrs.P.Rate":       false,
		"limits.K":          true,
		"limits.k":          true,
	} {
		if got := patchablePath(reflect.TypeFor[mapperConf](), tree, path); got != want {
			t.Errorf("patchablePath(%s) = %v, want %v", path, got, want)
		}
		if got := patchablePath(reflect.TypeFor[mapperTwin](), tree, path); got != want {
			t.Errorf("Go maps: patchablePath(%s) = %v, want %v", path, got, want)
		}
	}
}
