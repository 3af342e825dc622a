package schema_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/strataconf/strata/schema"
)

func TestRelax(t *testing.T) {
	type DB struct {
		Host string `koanf:"host" validate:"required"`
		Pool int    `koanf:"pool" validate:"min=1"`
	}
	type App struct {
		Name string `koanf:"name" validate:"required"`
		DB   DB     `koanf:"db"`
	}
	doc, err := schema.Generate(reflect.TypeFor[App]())
	if err != nil {
		t.Fatal(err)
	}
	strict, err := schema.Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string]any{"db": map[string]any{"pool": "5"}}
	var ve *schema.ValidationError
	if err := strict.Check(tree); !errors.As(err, &ve) || len(ve.Fields) != 2 {
		t.Fatalf("strict schema: %v", err)
	}
	relaxedDoc, err := schema.Relax(doc, []string{"name", "db.host"})
	if err != nil {
		t.Fatal(err)
	}
	relaxed, err := schema.Compile(relaxedDoc)
	if err != nil {
		t.Fatal(err)
	}
	if err := relaxed.Check(tree); err != nil {
		t.Fatalf("relaxed schema still requires provided paths: %v", err)
	}
	// Rules other than presence still hold.
	if err := relaxed.Check(map[string]any{"db": map[string]any{"pool": "0"}}); err == nil {
		t.Fatal("relaxed schema accepts pool 0")
	}
	// Not provided: still required.
	half, _ := schema.Relax(doc, []string{"name"})
	hs, _ := schema.Compile(half)
	if err := hs.Check(tree); !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Path != "db.host" {
		t.Fatalf("half-relaxed schema: %v", err)
	}
}
