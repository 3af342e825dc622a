package schema

import "testing"

type partialDB struct {
	Min int `koanf:"min" validate:"min=1"`
	Max int `koanf:"max" validate:"gtefield=Min"`
}

type partialApp struct {
	Port    int                  `koanf:"port" validate:"min=1,max=65535"`
	DB      partialDB            `koanf:"db"`
	Ptr     *partialDB           `koanf:"ptr"`
	Limits  map[string]int       `koanf:"limits" validate:"max=3,dive,min=0"`
	Tenants map[string]partialDB `koanf:"tenants" validate:"dive"`
	Mode    string               `koanf:"mode" validate:"oneof=a b"`
	Backup  string               `koanf:"backup" validate:"required_if=Mode b"`
	List    []int                `koanf:"list"`
}

func TestValidateAt(t *testing.T) {
	good := func() *partialApp {
		return &partialApp{Port: 80, DB: partialDB{Min: 1, Max: 2}, Ptr: &partialDB{Min: 1, Max: 1},
			Limits: map[string]int{"a": 1}, Tenants: map[string]partialDB{"t": {Min: 1, Max: 1}}, Mode: "a"}
	}
	for _, tc := range []struct {
		name   string
		change func(*partialApp)
		path   string
		want   bool
	}{
		{"valid leaf", func(a *partialApp) { a.Port = 81 }, "port", true},
		{"leaf breaks its rule", func(a *partialApp) { a.Port = 0 }, "port", false},
		{"cross-field in the same struct", func(a *partialApp) { a.DB.Min = 5 }, "db.min", false},
		{"through a pointer", func(a *partialApp) { a.Ptr.Max = 0 }, "ptr.max", false},
		{"map element rule", func(a *partialApp) { a.Limits["a"] = -1 }, "limits.a", false},
		{"map length rule", func(a *partialApp) { a.Limits["b"], a.Limits["c"], a.Limits["d"] = 1, 1, 1 }, "limits.d", false},
		{"map element removed", func(a *partialApp) { delete(a.Limits, "a") }, "limits.a", true},
		{"struct element field", func(a *partialApp) { a.Tenants["t"] = partialDB{Min: 2, Max: 1} }, "tenants.t.min", false},
		{"struct element valid", func(a *partialApp) { a.Tenants["t"] = partialDB{Min: 2, Max: 3} }, "tenants.t.max", true},
		{"a sibling's cross-field rule", func(a *partialApp) { a.Mode = "b" }, "mode", false},
		{"a slice cannot be judged alone", func(a *partialApp) { a.List = []int{1} }, "list.0", false},
		{"an unknown key", func(a *partialApp) {}, "nope", false},
		{"a nil pointer", func(a *partialApp) { a.Ptr = nil }, "ptr.min", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			if err := Validate(a); err != nil {
				t.Fatalf("the base is invalid: %v", err)
			}
			tc.change(a)
			if got := ValidateAt(a, tc.path); got != tc.want {
				t.Fatalf("ValidateAt(%q) = %v, want %v", tc.path, got, tc.want)
			}
			if tc.want && Validate(a) != nil {
				t.Fatalf("ValidateAt said valid, Validate says %v", Validate(a))
			}
		})
	}
}
