package schema

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

type DB struct {
	Host     string `koanf:"host" validate:"required,hostname"`
	Port     int    `koanf:"port" validate:"min=1,max=65535"`
	Password string `koanf:"password" secret:"true" validate:"min=8"`
}

type Server struct {
	Host string `koanf:"host" validate:"required"`
	URL  string `koanf:"url" validate:"omitempty,url"`
}

type Base struct {
	Region string `koanf:"region" validate:"oneof=eu us"`
}

type Credentials struct {
	User string `validate:"required"`
	Key  string `koanf:"key" validate:"len=4"`
}

type App struct {
	Base
	Name     string            `koanf:"name" validate:"required"`
	MaxConns int               `koanf:"max_conns" validate:"gte=1"`
	Admin    string            `koanf:"admin_email" validate:"omitempty,email"`
	DB       DB                `koanf:"db"`
	Servers  []Server          `koanf:"servers" validate:"dive"`
	Labels   map[string]string `koanf:"labels" validate:"dive,keys,alpha,endkeys,max=3"`
	Creds    *Credentials      `koanf:"creds" secret:"true"`
	Ignored  string            `koanf:"-" validate:"required"`
}

func validApp() App {
	return App{
		Base:     Base{Region: "eu"},
		Name:     "payments",
		MaxConns: 4,
		DB:       DB{Host: "db.internal", Port: 5432, Password: "long-enough"},
		Servers:  []Server{{Host: "a", URL: "https://a.example"}},
		Labels:   map[string]string{"env": "dev"},
		Creds:    &Credentials{User: "u", Key: "abcd"},
		Ignored:  "x",
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*App)
		want   []FieldError
	}{
		{"valid", func(*App) {}, nil},
		{"required and max", func(a *App) { a.Name = ""; a.DB.Port = 70000 }, []FieldError{
			{Path: "db.port", Rule: "max", Param: "65535", Value: "70000"},
			{Path: "name", Rule: "required", Value: ""},
		}},
		{"min", func(a *App) { a.MaxConns = 0 }, []FieldError{
			{Path: "max_conns", Rule: "gte", Param: "1", Value: "0"},
		}},
		{"hostname", func(a *App) { a.DB.Host = "not a host" }, []FieldError{
			{Path: "db.host", Rule: "hostname", Value: "not a host"},
		}},
		{"email", func(a *App) { a.Admin = "nobody" }, []FieldError{
			{Path: "admin_email", Rule: "email", Value: "nobody"},
		}},
		{"embedded struct adds no element", func(a *App) { a.Region = "mars" }, []FieldError{
			{Path: "region", Rule: "oneof", Param: "eu us", Value: "mars"},
		}},
		{"slice dive", func(a *App) {
			a.Servers = append(a.Servers, Server{URL: "::"}, Server{Host: "c"})
		}, []FieldError{
			{Path: "servers[1].host", Rule: "required", Value: ""},
			{Path: "servers[1].url", Rule: "url", Value: "::"},
		}},
		{"map dive keys and values", func(a *App) { a.Labels = map[string]string{"e1": "x", "tier": "gold"} }, []FieldError{
			{Path: "labels[e1]", Rule: "alpha", Value: "e1"},
			{Path: "labels[tier]", Rule: "max", Param: "3", Value: "gold"},
		}},
		{"secret field", func(a *App) { a.DB.Password = "hunter2" }, []FieldError{
			{Path: "db.password", Rule: "min", Param: "8", Value: Masked, Secret: true},
		}},
		{"under secret struct field, lower-case Go name", func(a *App) { a.Creds = &Credentials{Key: "hunter2"} }, []FieldError{
			{Path: "creds.key", Rule: "len", Param: "4", Value: Masked, Secret: true},
			{Path: "creds.user", Rule: "required", Value: Masked, Secret: true},
		}},
		{"koanf:\"-\" field reported by Go name", func(a *App) { a.Ignored = "" }, []FieldError{
			{Path: "Ignored", Rule: "required", Value: ""},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := validApp()
			tt.modify(&a)
			err := Validate(&a)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate = %v (%T), want *ValidationError", err, err)
			}
			if !reflect.DeepEqual(ve.Fields, tt.want) {
				t.Errorf("Fields =\n  %+v\nwant\n  %+v", ve.Fields, tt.want)
			}
		})
	}
}

func TestValidateError(t *testing.T) {
	a := validApp()
	a.Name = ""
	a.DB.Port = 70000
	a.DB.Password = "hunter2"
	a.Creds.Key = "s3cr3t-key"
	err := Validate(a) // by value works too
	want := `invalid config: creds.key: failed len=4 (value ******); db.password: failed min=8 (value ******); ` +
		`db.port: failed max=65535 (value 70000); name: failed required (value "")`
	if err == nil || err.Error() != want {
		t.Fatalf("Error() =\n  %v\nwant\n  %s", err, want)
	}
	for _, secret := range []string{"hunter2", "s3cr3t-key"} {
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Error() leaks %q", secret)
		}
	}
}

func TestFieldErrorString(t *testing.T) {
	tests := []struct {
		in   FieldError
		want string
	}{
		{FieldError{Path: "db.port", Rule: "max", Param: "65535", Value: "70000"}, "db.port: failed max=65535 (value 70000)"},
		{FieldError{Path: "name", Rule: "required"}, `name: failed required (value "")`},
		{FieldError{Path: "a", Rule: "url", Value: "x; y\nz"}, `a: failed url (value "x; y\nz")`},
		{FieldError{Path: "token", Rule: "len", Param: "4", Value: "hunter2", Secret: true}, "token: failed len=4 (value ******)"},
	}
	for _, tt := range tests {
		if got := tt.in.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

func TestValidatePlainErrors(t *testing.T) {
	type badRule struct {
		A string `validate:"no_such_rule"`
	}
	type badDive struct {
		A int `validate:"dive"`
	}
	tests := []struct {
		name string
		in   any
	}{
		{"nil", nil},
		{"nil pointer", (*App)(nil)},
		{"not a struct", 42},
		{"pointer to non-struct", new(string)},
		{"unknown rule", badRule{}},
		{"dive on scalar", badDive{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.in)
			var ve *ValidationError
			if err == nil || errors.As(err, &ve) {
				t.Fatalf("Validate = %v, want a plain error", err)
			}
		})
	}
}

type Squashed struct {
	Inner Base   `koanf:",squash"`
	Deep  *Inner `koanf:"deep"`
}

type Inner struct {
	Base  `secret:"true"`
	Token string `koanf:"tok" validate:"required"`
}

func TestValidateSquashAndSecretEmbedded(t *testing.T) {
	err := Validate(&Squashed{Inner: Base{Region: "x"}, Deep: &Inner{Base: Base{Region: "y"}}})
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want *ValidationError", err)
	}
	want := []FieldError{
		{Path: "deep.region", Rule: "oneof", Param: "eu us", Value: Masked, Secret: true},
		{Path: "deep.tok", Rule: "required", Value: ""},
		{Path: "region", Rule: "oneof", Param: "eu us", Value: "x"},
	}
	if !reflect.DeepEqual(ve.Fields, want) {
		t.Errorf("Fields =\n  %+v\nwant\n  %+v", ve.Fields, want)
	}
}

func TestValidateAnonymousStruct(t *testing.T) {
	v := struct {
		Port int `koanf:"port" validate:"max=10"`
	}{Port: 11}
	var ve *ValidationError
	if err := Validate(v); !errors.As(err, &ve) || len(ve.Fields) != 1 || ve.Fields[0].Path != "port" {
		t.Fatalf("Validate = %v, want one failure at port", err)
	}
}

type node struct {
	Name  string `koanf:"name" secret:"true"`
	Next  *node  `koanf:"next"`
	Inner struct {
		Key string `koanf:"key" secret:"1"`
	} `koanf:"inner"`
}

func TestSecretPaths(t *testing.T) {
	tests := []struct {
		t    reflect.Type
		want []string
	}{
		{reflect.TypeFor[App](), []string{"db.password", "creds"}},
		{reflect.TypeFor[*App](), []string{"db.password", "creds"}},
		{reflect.TypeFor[Squashed](), []string{"deep.region"}},
		{reflect.TypeFor[node](), []string{"name", "inner.key"}}, // recursive type terminates
		{reflect.TypeFor[int](), nil},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := SecretPaths(tt.t); !slices.Equal(got, tt.want) {
			t.Errorf("SecretPaths(%v) = %q, want %q", tt.t, got, tt.want)
		}
	}
}

func TestIsSecret(t *testing.T) {
	paths := []string{"db.password", "token"}
	tests := []struct {
		path string
		want bool
	}{
		{"db.password", true},
		{"db.password.x", true},
		{"token", true},
		{"token[0]", true},
		{"tokens", false},
		{"db.passwords", false},
		{"db", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsSecret(paths, tt.path); got != tt.want {
			t.Errorf("IsSecret(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

// TestLongValuesAreCut: a rule failing on a large map names the path and
// the rule, and shows the start of the value, not all of it.
func TestLongValuesAreCut(t *testing.T) {
	type wide struct {
		Limits map[string]int `koanf:"limits" validate:"max=3"`
	}
	v := wide{Limits: map[string]int{}}
	for i := range 10000 {
		v.Limits[fmt.Sprintf("tenant-%05d", i)] = i
	}
	err := Validate(&v)
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if len(msg) > 2*MaxShown || !strings.Contains(msg, "limits: failed max=3 (value \"map[") || !strings.Contains(msg, "bytes in all)") {
		t.Fatalf("error of %d bytes: %.400s", len(msg), msg)
	}
}
