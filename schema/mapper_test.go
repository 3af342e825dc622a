package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/strataconf/strata/codec"
)

// testMap is a codec.Mapper of its own, as bigmap.Map is: copy on write,
// value receivers, the zero value empty. Its entries lie behind a func,
// which reflection cannot look into (no more than it should into a hash
// trie's nodes), so only the Mapper methods reach them. plain, when set,
// counts the calls of MapperPlain (the copies of the whole map).
type testMap[V any] struct {
	entries func() map[string]V // nil: none
	plain   *atomic.Int64
}

var _ codec.Mapper = testMap[int]{}

func (t testMap[V]) all() map[string]V {
	if t.entries == nil {
		return nil
	}
	return t.entries()
}

func (t testMap[V]) MapperElem() reflect.Type { return reflect.TypeFor[V]() }

func (t testMap[V]) MapperLen() int { return len(t.all()) }

func (t testMap[V]) MapperGet(key string) (reflect.Value, bool) {
	v, ok := t.all()[key]
	if !ok {
		return reflect.Value{}, false
	}
	return reflect.ValueOf(&v).Elem(), true
}

func (t testMap[V]) MapperAll() iter.Seq2[string, reflect.Value] {
	return func(yield func(string, reflect.Value) bool) {
		for k, v := range t.all() {
			if !yield(k, reflect.ValueOf(&v).Elem()) {
				return
			}
		}
	}
}

func (t testMap[V]) MapperWith(entries iter.Seq2[string, reflect.Value]) codec.Mapper {
	m := maps.Clone(t.all())
	if m == nil {
		m = map[string]V{}
	}
	for k, e := range entries {
		var v V
		if e.IsValid() {
			reflect.ValueOf(&v).Elem().Set(e)
		}
		m[k] = v
	}
	return testMap[V]{entries: func() map[string]V { return m }, plain: t.plain}
}

func (t testMap[V]) MapperWithout(key string) codec.Mapper {
	m := maps.Clone(t.all())
	delete(m, key)
	return testMap[V]{entries: func() map[string]V { return m }, plain: t.plain}
}

func (t testMap[V]) MapperPlain() any {
	if t.plain != nil {
		t.plain.Add(1)
	}
	out := make(map[string]V, len(t.all()))
	maps.Copy(out, t.all())
	return out
}

// mapOf builds a testMap holding entries, through MapperWith.
func mapOf[V any](entries map[string]V) testMap[V] {
	return testMap[V]{}.MapperWith(func(yield func(string, reflect.Value) bool) {
		for k, v := range entries {
			if !yield(k, reflect.ValueOf(&v).Elem()) {
				return
			}
		}
	}).(testMap[V])
}

// with returns m with the entry key set to v, through MapperWith.
func with[V any](m testMap[V], key string, v V) testMap[V] {
	return m.MapperWith(codec.MapperEntry(key, reflect.ValueOf(&v).Elem())).(testMap[V])
}

type mTenant struct {
	Port  int    `koanf:"port" validate:"min=1"`
	Token string `koanf:"token" secret:"true" validate:"omitempty,len=4"`
}

type mapperApp struct {
	Items   testMap[int]               `koanf:"items" validate:"required,max=3,dive,min=0"`
	Labels  testMap[string]            `koanf:"labels" validate:"dive,keys,alpha,endkeys,max=3"`
	Tenants testMap[mTenant]           `koanf:"tenants" validate:"dive"`
	Creds   testMap[leakCred]          `koanf:"creds" validate:"max=1"`
	Grid    testMap[testMap[int]]      `koanf:"grid" validate:"dive,min=1,dive,min=0"`
	Lists   []testMap[int]             `koanf:"lists" validate:"dive,dive,min=0"`
	ByZone  map[string]*testMap[int]   `koanf:"by_zone" validate:"dive,omitempty,max=1"`
	Opt     *testMap[int]              `koanf:"opt" validate:"omitempty,min=2"`
	Plain   testMap[int]               `koanf:"plain"` // no rules: nothing checked
	Deep    struct{ In testMap[uint] } `koanf:"deep"`
}

func validMapperApp() mapperApp {
	opt := mapOf(map[string]int{"a": 1, "b": 2})
	return mapperApp{
		Items:   mapOf(map[string]int{"k1": 1}),
		Labels:  mapOf(map[string]string{"env": "dev"}),
		Tenants: mapOf(map[string]mTenant{"acme": {Port: 80, Token: "abcd"}}),
		Creds:   mapOf(map[string]leakCred{"ci": {User: "ci", Token: "hunter2secret"}}),
		Grid:    mapOf(map[string]testMap[int]{"a": mapOf(map[string]int{"b": 0})}),
		Lists:   []testMap[int]{mapOf(map[string]int{"x": 1})},
		ByZone:  map[string]*testMap[int]{"eu": nil},
		Opt:     &opt,
		Plain:   mapOf(map[string]int{"any": -5}),
	}
}

// TestValidateMapper: the rules of a Mapper field apply as to a Go map of
// the same entries, with the same paths.
func TestValidateMapper(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*mapperApp)
		want   []FieldError
	}{
		{"valid", func(*mapperApp) {}, nil},
		{"dive on the values", func(a *mapperApp) { a.Items = with(a.Items, "k2", -1) }, []FieldError{
			{Path: "items[k2]", Rule: "min", Param: "0", Value: "-1"},
		}},
		{"required: an empty Mapper, as an absent key", func(a *mapperApp) { a.Items = testMap[int]{} }, []FieldError{
			{Path: "items", Rule: "required", Value: "map[]"},
		}},
		{"length", func(a *mapperApp) { a.Items = mapOf(map[string]int{"a": 1, "b": 2, "c": 3, "d": 4}) }, []FieldError{
			{Path: "items", Rule: "max", Param: "3", Value: "map[a:1 b:2 c:3 d:4]"},
		}},
		{"keys and values", func(a *mapperApp) { a.Labels = mapOf(map[string]string{"e1": "x", "tier": "gold"}) }, []FieldError{
			{Path: "labels[e1]", Rule: "alpha", Value: "e1"},
			{Path: "labels[tier]", Rule: "max", Param: "3", Value: "gold"},
		}},
		{"struct values and the secrets in them", func(a *mapperApp) {
			a.Tenants = with(a.Tenants, "beta", mTenant{Port: 0, Token: "hunter2"})
		}, []FieldError{
			{Path: "tenants[beta].port", Rule: "min", Param: "1", Value: "0"},
			{Path: "tenants[beta].token", Rule: "len", Param: "4", Value: Masked, Secret: true},
		}},
		{"a Mapper holding secrets is not shown", func(a *mapperApp) {
			a.Creds = with(a.Creds, "cd", leakCred{User: "cd", Token: "hunter3secret"})
		}, []FieldError{
			{Path: "creds", Rule: "max", Param: "1", Value: Masked, Secret: true},
		}},
		{"Mapper of Mappers", func(a *mapperApp) {
			a.Grid = with(with(a.Grid, "a", mapOf(map[string]int{"b": -2})), "c", testMap[int]{})
		}, []FieldError{
			{Path: "grid[a][b]", Rule: "min", Param: "0", Value: "-2"},
			{Path: "grid[c]", Rule: "min", Param: "1", Value: "map[]"},
		}},
		{"slice of Mappers", func(a *mapperApp) { a.Lists = append(a.Lists, mapOf(map[string]int{"y": -1})) }, []FieldError{
			{Path: "lists[1][y]", Rule: "min", Param: "0", Value: "-1"},
		}},
		{"map of pointers to Mappers", func(a *mapperApp) {
			m := mapOf(map[string]int{"a": 1, "b": 2})
			a.ByZone["us"] = &m
		}, []FieldError{
			{Path: "by_zone[us]", Rule: "max", Param: "1", Value: "map[a:1 b:2]"},
		}},
		{"pointer to a Mapper", func(a *mapperApp) {
			m := mapOf(map[string]int{"a": 1})
			a.Opt = &m
		}, []FieldError{
			{Path: "opt", Rule: "min", Param: "2", Value: "map[a:1]"},
		}},
		{"nil pointer, omitempty", func(a *mapperApp) { a.Opt = nil }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := validMapperApp()
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
			for _, secret := range []string{"hunter2", "hunter3"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("Error() leaks %q: %v", secret, err)
				}
			}
		})
	}
}

func TestValidateMapperError(t *testing.T) {
	a := validMapperApp()
	a.Items = with(a.Items, "k1", -1)
	want := "invalid config: items[k1]: failed min=0 (value -1)"
	if err := Validate(a); err == nil || err.Error() != want {
		t.Fatalf("Validate = %v, want %s", err, want)
	}
}

// TestValidatorFor: a validator of its own for a type that holds Mappers,
// built once however many goroutines ask; the shared one for the others.
func TestValidatorFor(t *testing.T) {
	if validatorFor(reflect.TypeFor[App]()) != validate {
		t.Error("a type without Mappers has a validator of its own")
	}
	type fresh struct {
		M testMap[int] `validate:"dive,max=1"`
	}
	var wg sync.WaitGroup
	got := make([]any, 8)
	for i := range got {
		wg.Go(func() {
			got[i] = validatorFor(reflect.TypeFor[fresh]())
			if err := Validate(fresh{M: mapOf(map[string]int{"a": 2})}); err == nil {
				t.Error("Validate = nil, want max=1 failing")
			}
		})
	}
	wg.Wait()
	for _, v := range got {
		if v != got[0] || v == any(validate) {
			t.Fatal("not one validator of its own")
		}
	}
	var types []string
	for _, m := range mapperTypes(reflect.TypeFor[mapperApp]()) {
		types = append(types, m.String())
	}
	slices.Sort(types)
	want := []string{
		"schema.testMap[github.com/strataconf/strata/schema.leakCred]",
		"schema.testMap[github.com/strataconf/strata/schema.mTenant]",
		"schema.testMap[github.com/strataconf/strata/schema.testMap[int]]",
		"schema.testMap[int]",
		"schema.testMap[string]",
		"schema.testMap[uint]",
	}
	if !slices.Equal(types, want) {
		t.Errorf("mapperTypes =\n  %q\nwant\n  %q", types, want)
	}
}

func TestValidateMapperNotAStruct(t *testing.T) {
	m := mapOf(map[string]int{"a": 1})
	var ve *ValidationError
	if err := Validate(m); err == nil || errors.As(err, &ve) {
		t.Errorf("Validate(Mapper) = %v, want a plain error", err)
	}
	if ValidateAt(&m, "a") {
		t.Error("ValidateAt(Mapper) = true")
	}
	if _, err := Generate(reflect.TypeFor[testMap[int]]()); err == nil {
		t.Error("Generate(Mapper) = nil error")
	}
}

type partialMapperApp struct {
	Limits  testMap[int]       `koanf:"limits" validate:"max=10000,dive,min=0"`
	Tenants testMap[partialDB] `koanf:"tenants" validate:"required,dive"`
	Keyed   testMap[int]       `koanf:"keyed" validate:"dive,keys,alpha,endkeys"`
	Unique  testMap[int]       `koanf:"unique" validate:"unique"`
	Grid    testMap[testMap[int]]
	Ptr     *testMap[int] `koanf:"ptr"`
	Mode    string        `koanf:"mode" validate:"oneof=a b"`
	Backup  string        `koanf:"backup" validate:"required_if=Mode b"`
}

// TestValidateAtMapper: ValidateAt judges one entry of a Mapper of 10,000
// entries as it does one of a Go map, without copying the Mapper.
func TestValidateAtMapper(t *testing.T) {
	var plain atomic.Int64
	big := make(map[string]int, 10000)
	for i := range 9999 {
		big[fmt.Sprintf("k%05d", i)] = i
	}
	good := func() *partialMapperApp {
		return &partialMapperApp{
			Limits:  testMap[int]{plain: &plain}.MapperWith(maps.All(mapValues(big))).(testMap[int]),
			Tenants: testMap[partialDB]{plain: &plain}.MapperWith(maps.All(mapValues(map[string]partialDB{"t": {Min: 1, Max: 1}}))).(testMap[partialDB]),
			Keyed:   mapOf(map[string]int{"a": 1}),
			Unique:  testMap[int]{plain: &plain}.MapperWith(maps.All(mapValues(map[string]int{"a": 1, "b": 2}))).(testMap[int]),
			Grid:    mapOf(map[string]testMap[int]{"g": mapOf(map[string]int{"x": 1})}),
			Mode:    "a",
		}
	}
	for _, tc := range []struct {
		name   string
		change func(*partialMapperApp)
		path   string
		want   bool
		copies bool // the Mapper is read whole, as the validator reads a Go map
	}{
		{"entry valid", func(a *partialMapperApp) { a.Limits = with(a.Limits, "k00042", 7) }, "limits.k00042", true, false},
		{"entry breaks the dive rule", func(a *partialMapperApp) { a.Limits = with(a.Limits, "k00042", -1) }, "limits.k00042", false, false},
		{"entry added, length still fine", func(a *partialMapperApp) { a.Limits = with(a.Limits, "k09999", 1) }, "limits.k09999", true, false},
		{"entry added past the length rule", func(a *partialMapperApp) {
			a.Limits = with(with(a.Limits, "k09999", 1), "k10000", 1)
		}, "limits.k10000", false, false},
		{"entry removed", func(a *partialMapperApp) { a.Limits = a.Limits.MapperWithout("k00001").(testMap[int]) }, "limits.k00001", true, false},
		{"struct entry breaks a cross-field rule", func(a *partialMapperApp) {
			a.Tenants = with(a.Tenants, "t", partialDB{Min: 2, Max: 1})
		}, "tenants.t.min", false, false},
		{"struct entry valid", func(a *partialMapperApp) {
			a.Tenants = with(a.Tenants, "t", partialDB{Min: 2, Max: 3})
		}, "tenants.t.max", true, false},
		{"struct entry breaks its own rule", func(a *partialMapperApp) {
			a.Tenants = with(a.Tenants, "u", partialDB{Min: 0, Max: 3})
		}, "tenants.u", false, false},
		{"last entry removed: required", func(a *partialMapperApp) {
			a.Tenants = a.Tenants.MapperWithout("t").(testMap[partialDB])
		}, "tenants.t", false, false},
		{"key rules cannot be judged alone", func(a *partialMapperApp) { a.Keyed = with(a.Keyed, "b", 1) }, "keyed.b", false, false},
		{"a rule that reads every value", func(a *partialMapperApp) { a.Unique = with(a.Unique, "b", 1) }, "unique.b", false, true},
		{"a rule that reads every value, valid", func(a *partialMapperApp) { a.Unique = with(a.Unique, "c", 3) }, "unique.c", true, true},
		{"below an entry that is a Mapper", func(a *partialMapperApp) {}, "grid.g.x", false, false},
		{"a pointer to a Mapper", func(a *partialMapperApp) { m := mapOf(map[string]int{"a": 1}); a.Ptr = &m }, "ptr.a", false, false},
		{"the whole Mapper", func(a *partialMapperApp) { a.Limits = with(a.Limits, "k00042", -1) }, "limits", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := good()
			if err := Validate(a); err != nil {
				t.Fatalf("the base is invalid: %v", err)
			}
			tc.change(a)
			plain.Store(0)
			if got := ValidateAt(a, tc.path); got != tc.want {
				t.Fatalf("ValidateAt(%q) = %v, want %v", tc.path, got, tc.want)
			}
			if n := plain.Load(); (n > 0) != tc.copies {
				t.Errorf("ValidateAt(%q) called MapperPlain %d times", tc.path, n)
			}
			if err := Validate(a); tc.want && err != nil {
				t.Fatalf("ValidateAt said valid, Validate says %v", err)
			}
		})
	}
}

// mapValues turns a map's values into reflect.Values, for MapperWith.
func mapValues[V any](m map[string]V) map[string]reflect.Value {
	out := make(map[string]reflect.Value, len(m))
	for k, v := range m {
		out[k] = reflect.ValueOf(&v).Elem()
	}
	return out
}

type mapperShape struct {
	Items   testMap[int]         `koanf:"items" validate:"max=3,dive,min=0"`
	Labels  testMap[string]      `koanf:"labels" validate:"dive,keys,alpha,endkeys,max=3"`
	Tenants testMap[mTenant]     `koanf:"tenants" validate:"dive"`
	Loose   testMap[mTenant]     `koanf:"loose"`
	Opt     *testMap[int]        `koanf:"opt" validate:"omitempty,min=2"`
	Grid    testMap[[]string]    `koanf:"grid" validate:"min=1,dive,dive,hostname"`
	Named   map[string]mapperBox `koanf:"named"`
}

type goShape struct {
	Items   map[string]int       `koanf:"items" validate:"max=3,dive,min=0"`
	Labels  map[string]string    `koanf:"labels" validate:"dive,keys,alpha,endkeys,max=3"`
	Tenants map[string]mTenant   `koanf:"tenants" validate:"dive"`
	Loose   map[string]mTenant   `koanf:"loose"`
	Opt     *map[string]int      `koanf:"opt" validate:"omitempty,min=2"`
	Grid    map[string][]string  `koanf:"grid" validate:"min=1,dive,dive,hostname"`
	Named   map[string]goMapsBox `koanf:"named"`
}

type mapperBox struct {
	M testMap[bool] `koanf:"m"`
}

type goMapsBox struct {
	M map[string]bool `koanf:"m"`
}

// TestGenerateMapper: the schema of a Mapper is that of the Go map of the
// same entries.
func TestGenerateMapper(t *testing.T) {
	got, err := Generate(reflect.TypeFor[mapperShape]())
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(reflect.TypeFor[goShape]())
	if err != nil {
		t.Fatal(err)
	}
	if g, w := strings.Replace(string(got), `"mapperShape"`, `"goShape"`, 1), string(want); g != w {
		t.Errorf("Generate(mapperShape) =\n%s\nwant, as for goShape,\n%s", g, w)
	}
	var doc struct {
		Properties map[string]json.RawMessage
		Required   []string
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	wantItems := `{"additionalProperties":{"minimum":0,"type":"integer"},"maxProperties":3,"type":"object"}`
	if items := compactJSON(t, doc.Properties["items"]); items != wantItems {
		t.Errorf("items: %s, want %s", items, wantItems)
	}
	if !slices.Equal(doc.Required, []string{"grid"}) {
		t.Errorf("required = %q, want [grid]", doc.Required)
	}
}

// TestGenerateMapperRequired: an empty Mapper fails "required", so the
// schema asks for one property as well as for the key.
func TestGenerateMapperRequired(t *testing.T) {
	type app struct {
		Items testMap[int]  `koanf:"items" validate:"required"`
		Opt   *testMap[int] `koanf:"opt" validate:"required"`
	}
	got, err := Generate(reflect.TypeFor[app]())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Properties map[string]json.RawMessage
		Required   []string
	}
	if err := json.Unmarshal(got, &doc); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"items": `{"additionalProperties":{"type":"integer"},"minProperties":1,"type":"object"}`,
		"opt":   `{"additionalProperties":{"type":"integer"},"type":"object"}`,
	} {
		if p := compactJSON(t, doc.Properties[key]); p != want {
			t.Errorf("%s: %s, want %s", key, p, want)
		}
	}
	if !slices.Equal(doc.Required, []string{"items", "opt"}) {
		t.Errorf("required = %q, want [items opt]", doc.Required)
	}
	s, err := Compile(got)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Check(map[string]any{"items": map[string]any{}, "opt": map[string]any{}})
	if err == nil || !strings.Contains(err.Error(), "items: failed minProperties=1") {
		t.Errorf("Check = %v, want items failing minProperties", err)
	}
	if err := Validate(app{Opt: &testMap[int]{}}); err == nil || !strings.Contains(err.Error(), "items: failed required") {
		t.Errorf("Validate = %v, want items failing required", err)
	}
}

func compactJSON(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestMapperSecrets: the secrets in a Mapper's values are found by type
// (SecretPaths, with the segment Wildcard) and by value (holdsSecret), so
// that Check, MaskTree and error values mask them as a Go map's.
func TestMapperSecrets(t *testing.T) {
	type app struct {
		Tenants testMap[mTenant]           `koanf:"tenants"`
		Grid    testMap[testMap[leakCred]] `koanf:"grid"`
		Any     testMap[any]               `koanf:"any"`
		Plain   testMap[int]               `koanf:"plain"`
	}
	wantPaths := []string{"tenants.*.token", "grid.*.*.token"}
	if got := SecretPaths(reflect.TypeFor[app]()); !slices.Equal(got, wantPaths) {
		t.Errorf("SecretPaths = %q, want %q", got, wantPaths)
	}
	for _, tc := range []struct {
		v    any
		want bool
	}{
		{testMap[mTenant]{}, true}, // by type, even empty
		{testMap[any]{}, false},
		{mapOf(map[string]any{"a": 1}), false},
		{mapOf(map[string]any{"a": leakCred{Token: "x"}}), true},
		{struct{ M testMap[any] }{mapOf(map[string]any{"a": &leakPin{}})}, true},
		{struct{ m testMap[any] }{mapOf(map[string]any{"a": 1})}, true}, // unreadable: counts
		{mapOf(map[string]int{"a": 1}), false},
	} {
		if got := holdsSecret(reflect.ValueOf(tc.v)); got != tc.want {
			t.Errorf("holdsSecret(%#v) = %v, want %v", tc.v, got, tc.want)
		}
	}

	doc, err := Generate(reflect.TypeFor[mapperShape]())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.SecretPaths(); !slices.Equal(got, []string{"loose.*.token", "tenants.*.token"}) {
		t.Errorf("Schema.SecretPaths = %q", got)
	}
	tree := map[string]any{
		"tenants": map[string]any{"acme": map[string]any{"port": "0", "token": "hunter2"}},
		"grid":    map[string]any{"x": []any{"h"}},
	}
	err = s.Check(tree)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Check = %v, want a *ValidationError", err)
	}
	want := []FieldError{
		{Path: "tenants.acme.port", Rule: "minimum", Param: "1", Value: "0"},
		{Path: "tenants.acme.token", Rule: "maxLength", Param: "4", Value: Masked, Secret: true},
	}
	if !reflect.DeepEqual(ve.Fields, want) {
		t.Errorf("Check Fields =\n  %+v\nwant\n  %+v", ve.Fields, want)
	}
	if s.Unknown("tenants.acme.port") || !s.Unknown("tenants.acme.nope") {
		t.Error("Unknown does not go through the Mapper's entries")
	}
	masked := MaskTree(tree, SecretPaths(reflect.TypeFor[mapperShape]()))
	if got := masked["tenants"].(map[string]any)["acme"].(map[string]any)["token"]; got != Masked {
		t.Errorf("MaskTree: token = %v", got)
	}
}

// TestCheckNormalizesMapper: a Mapper value in a tree is read as the map
// of its entries.
func TestCheckNormalizesMapper(t *testing.T) {
	doc, err := Generate(reflect.TypeFor[mapperShape]())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Compile(doc)
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string]any{
		"items": mapOf(map[string]int{"a": 1, "b": -1}),
		"grid":  mapOf(map[string][]string{"x": {"h"}}),
	}
	err = s.Check(tree)
	if err == nil || err.Error() != "invalid config: items.b: failed minimum=0 (value -1)" {
		t.Errorf("Check = %v", err)
	}
	if got := normalize(mapOf(map[string]any{"a": nil, "b": int8(2)})); !reflect.DeepEqual(got, map[string]any{"b": int64(2)}) {
		t.Errorf("normalize = %#v", got)
	}
}
