package codec

import (
	"reflect"
	"testing"
)

type canonDB struct {
	MaxConns int               `koanf:"maxConns"`
	Labels   map[string]string `koanf:"labels"`
}

type canonApp struct {
	MaxConns int                `koanf:"maxConns"`
	DB       *canonDB           `koanf:"db"`
	Servers  []canonDB          `koanf:"servers"`
	Tenants  map[string]canonDB `koanf:"tenants"`
	Any      any                `koanf:"any"`
}

func TestCanonical(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    map[string]any
		want  map[string]any
		moved map[string]string
	}{{
		name:  "lower-cased key takes the field's spelling",
		in:    map[string]any{"maxconns": 50},
		want:  map[string]any{"maxConns": 50},
		moved: map[string]string{"maxconns": "maxConns"},
	}, {
		name:  "exact key wins over one differing in case, which stays unused",
		in:    map[string]any{"maxconns": 50, "maxConns": 10},
		want:  map[string]any{"maxconns": 50, "maxConns": 10},
		moved: map[string]string{},
	}, {
		name:  "first in sorted order wins between two inexact keys",
		in:    map[string]any{"maxconns": 50, "MAXCONNS": 10},
		want:  map[string]any{"maxconns": 50, "maxConns": 10},
		moved: map[string]string{"MAXCONNS": "maxConns"},
	}, {
		name:  "nested through a pointer; map keys keep their case",
		in:    map[string]any{"DB": map[string]any{"MAXCONNS": 3, "labels": map[string]any{"Zone": "eu"}}},
		want:  map[string]any{"db": map[string]any{"maxConns": 3, "labels": map[string]any{"Zone": "eu"}}},
		moved: map[string]string{"DB.MAXCONNS": "db.maxConns", "DB.labels.Zone": "db.labels.Zone"},
	}, {
		name:  "list elements and index mappings",
		in:    map[string]any{"Servers": []any{map[string]any{"maxconns": 1}}, "tenants": map[string]any{"Acme": map[string]any{"maxconns": 2}}},
		want:  map[string]any{"servers": []any{map[string]any{"maxConns": 1}}, "tenants": map[string]any{"Acme": map[string]any{"maxConns": 2}}},
		moved: map[string]string{"Servers": "servers", "tenants.Acme.maxconns": "tenants.Acme.maxConns"},
	}, {
		name:  "index mapping of a slice",
		in:    map[string]any{"servers": map[string]any{"0": map[string]any{"MaxConns": 1}}},
		want:  map[string]any{"servers": map[string]any{"0": map[string]any{"maxConns": 1}}},
		moved: map[string]string{"servers.0.MaxConns": "servers.0.maxConns"},
	}, {
		name:  "unknown keys and untyped values are kept",
		in:    map[string]any{"Other": 1, "ANY": map[string]any{"X": 1}},
		want:  map[string]any{"Other": 1, "any": map[string]any{"X": 1}},
		moved: map[string]string{"ANY.X": "any.X"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			moved := map[string]string{}
			got := Canonical(tc.in, reflect.TypeFor[canonApp](), func(from, to string) { moved[from] = to })
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("tree = %v, want %v", got, tc.want)
			}
			if !reflect.DeepEqual(moved, tc.moved) {
				t.Errorf("moved = %v, want %v", moved, tc.moved)
			}
		})
	}
}

func TestCanonicalLeavesInputAlone(t *testing.T) {
	in := map[string]any{"DB": map[string]any{"MAXCONNS": 3}}
	Canonical(in, reflect.TypeFor[canonApp](), nil)
	if _, ok := in["DB"].(map[string]any)["MAXCONNS"]; !ok {
		t.Fatalf("input modified: %v", in)
	}
}
