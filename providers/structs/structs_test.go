package structs

import (
	"context"
	"reflect"
	"testing"
)

func TestRead(t *testing.T) {
	type db struct {
		Port int `koanf:"port"`
	}
	type app struct {
		Name     string   `koanf:"name"`
		MaxConns int      `koanf:"maxConns"`
		DB       db       `koanf:"db"`
		Tags     []string `koanf:"tags"`
	}
	c, err := New(&app{Name: "a", MaxConns: 3, DB: db{Port: 5432}, Tags: []string{"x"}}).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if c.Tree["maxConns"] == nil || c.Tree["db"].(map[string]any)["port"] == nil {
		t.Fatalf("tree = %v", c.Tree)
	}
	want := map[string]string{"name": "", "maxConns": "", "db.port": "", "tags": ""}
	if !reflect.DeepEqual(c.Keys, want) {
		t.Fatalf("keys = %v, want %v", c.Keys, want)
	}
	if _, err := New(42).Read(context.Background()); err == nil {
		t.Fatal("Read of an int did not fail")
	}
}
