package env

import (
	"context"
	"reflect"
	"testing"
)

func TestRead(t *testing.T) {
	t.Parallel()
	type m = map[string]any
	type s = map[string]string
	tests := []struct {
		name     string
		prefix   string
		environ  []string
		wantTree m
		wantVars s
	}{
		{"empty", "APP_", nil, m{}, s{}},
		{"mapping", "APP_", []string{
			"APP_DB__PORT=5432",
			"APP_MAX_CONNS=10",
			"APP_DB__POOL__MAX_IDLE=4",
			"APP_NAME=a=b", // value keeps its "="
			"APP_EMPTY=",
		}, m{
			"db":        m{"port": "5432", "pool": m{"max_idle": "4"}},
			"max_conns": "10",
			"name":      "a=b",
			"empty":     "",
		}, s{
			"db.port":          "APP_DB__PORT",
			"max_conns":        "APP_MAX_CONNS",
			"db.pool.max_idle": "APP_DB__POOL__MAX_IDLE",
			"name":             "APP_NAME",
			"empty":            "APP_EMPTY",
		}},
		{"prefix is case-sensitive and required", "APP_", []string{
			"app_X=1", "APPX=1", "OTHER=1", "X_APP_Y=1",
		}, m{}, s{}},
		{"ignored names", "APP_", []string{
			"APP_=1", "APP___X=1", "APP_DB__=1", "APP_A____B=1", "APP_A.B=1", "NOEQUALS", "APP_NOEQ",
		}, m{}, s{}},
		{"triple underscore splits from the left", "APP_", []string{"APP_DB___X=1"},
			m{"db": m{"_x": "1"}}, s{"db._x": "APP_DB___X"}},
		{"deeper wins over leaf", "APP_", []string{"APP_DB=x", "APP_DB__PORT=1", "APP_DB__POOL__MAX=2", "APP_DB__POOL=y"},
			m{"db": m{"port": "1", "pool": m{"max": "2"}}},
			s{"db.port": "APP_DB__PORT", "db.pool.max": "APP_DB__POOL__MAX"}},
		{"deeper wins, either order", "APP_", []string{"APP_DB__PORT=1", "APP_DB=x"},
			m{"db": m{"port": "1"}}, s{"db.port": "APP_DB__PORT"}},
		{"same path: first-sorting name wins", "APP_", []string{"APP_db__Port=lower", "APP_DB__PORT=upper"},
			m{"db": m{"port": "upper"}}, s{"db.port": "APP_DB__PORT"}},
		{"same path, other order", "APP_", []string{"APP_DB__PORT=upper", "APP_db__Port=lower"},
			m{"db": m{"port": "upper"}}, s{"db.port": "APP_DB__PORT"}},
		{"repeated name: first wins", "APP_", []string{"APP_X=1", "APP_X=2"},
			m{"x": "1"}, s{"x": "APP_X"}},
		{"empty prefix takes all", "", []string{"HOME=/root", "A__B=1"},
			m{"home": "/root", "a": m{"b": "1"}}, s{"home": "HOME", "a.b": "A__B"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := New(tt.prefix, WithEnviron(func() []string { return tt.environ }))
			c, _ := p.Read(context.Background())
			tree, vars := c.Tree, c.Keys
			if !reflect.DeepEqual(tree, tt.wantTree) {
				t.Errorf("tree = %#v, want %#v", tree, tt.wantTree)
			}
			if !reflect.DeepEqual(vars, tt.wantVars) {
				t.Errorf("vars = %#v, want %#v", vars, tt.wantVars)
			}
		})
	}
}

func TestReadDefaultsToOSEnviron(t *testing.T) {
	t.Setenv("STRATA_ENV_TEST__KEY", "v")
	c, _ := New("STRATA_ENV_TEST__").Read(context.Background())
	tree, vars := c.Tree, c.Keys
	if tree["key"] != "v" || vars["key"] != "STRATA_ENV_TEST__KEY" {
		t.Errorf("Read = %v, %v; want key=v from the process environment", tree, vars)
	}
}
