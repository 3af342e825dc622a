package schema

import (
	"errors"
	"strings"
	"testing"
)

type leakCred struct {
	User  string `koanf:"user"`
	Token string `koanf:"token" secret:"true"`
}

type leakPin struct {
	Pin int `koanf:"pin" secret:"true"`
}

// A rule on a value that holds a secret beneath it (a slice of structs, a
// map of them, a pointer to one compared with another, an interface
// holding one) fails without showing that value: %v of it would
// print the secret.
func TestValidateHidesContainersHoldingSecrets(t *testing.T) {
	const secret = "hunter2secret"
	type App struct {
		Creds    []leakCred          `koanf:"creds" validate:"min=2"`
		ByName   map[string]leakCred `koanf:"by_name" validate:"min=2"`
		Primary  *leakCred           `koanf:"primary" validate:"omitempty,nefield=Backup"`
		Backup   *leakCred           `koanf:"backup"`
		Pins     [1]leakPin          `koanf:"pins" validate:"dive,required"`
		Any      any                 `koanf:"any" validate:"len=2"`
		Plain    []string            `koanf:"plain" validate:"min=2"`
		Elements []leakCred          `koanf:"elements" validate:"dive"`
	}
	c := leakCred{User: "ci", Token: secret}
	a := App{
		Creds:   []leakCred{c},
		ByName:  map[string]leakCred{"ci": c},
		Primary: &c, Backup: &c,
		Pins:  [1]leakPin{{Pin: 0}},
		Any:   []leakCred{c},
		Plain: []string{"shown"},
	}
	err := Validate(&a)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a *ValidationError", err)
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "ci") {
		t.Fatalf("a secret shows: %v", err)
	}
	want := map[string]bool{"creds": true, "by_name": true, "primary": true, "pins[0]": true, "any": true, "plain": false}
	for _, f := range ve.Fields {
		hidden, ok := want[f.Path]
		if !ok {
			t.Errorf("unexpected failure %v", f)
			continue
		}
		delete(want, f.Path)
		if hidden && (f.Value != Masked || !f.Secret || !strings.Contains(f.String(), "(value "+Masked+")")) {
			t.Errorf("%s: %+v, want the value hidden", f.Path, f)
		}
		if !hidden && (f.Secret || f.Value != "[shown]") {
			t.Errorf("%s: %+v, want the value shown", f.Path, f)
		}
	}
	if len(want) > 0 {
		t.Errorf("no failure for %v in %v", want, err)
	}
}

func TestHoldsSecret(t *testing.T) {
	paths := []string{"db.password", "creds.*.token", "users.*.keys", "p.token"}
	for path, want := range map[string]bool{
		"":                      true,
		"db":                    true,
		"db.password":           true,
		"db.host":               false,
		"creds":                 true,
		"creds.0":               true,
		"creds[0]":              true,
		"creds.0.token":         true,
		"creds[0].user":         false,
		"creds.0.user":          false,
		"users":                 true,
		"users[alice]":          true,
		"users.alice.keys.main": true,
		"users.alice.name":      false,
		"p":                     true,
		"p.user":                false,
		"port":                  false,
		"dbx":                   false,
	} {
		if got := HoldsSecret(paths, path); got != want {
			t.Errorf("HoldsSecret(%q) = %v, want %v", path, got, want)
		}
	}
	if HoldsSecret(nil, "") {
		t.Error("HoldsSecret(nil, \"\") = true")
	}
}
