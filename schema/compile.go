package schema

import (
	"bytes"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaLocation names the compiled document inside the compiler; it never
// leaves the process.
const schemaLocation = "strata:///schema.json"

// Schema is a compiled schema, ready to check documents.
//
// A Schema is immutable; its methods are safe for concurrent use.
type Schema struct {
	doc      any // the schema document, decoded; numbers are json.Number
	compiled *jsonschema.Schema
	secrets  []string
	patterns sync.Map // "patternProperties" pattern → *regexp.Regexp
}

// Compile parses a JSON Schema document (as produced by Generate, or written
// by hand). A document without "$schema" is read as draft 2020-12. Format
// assertions are enabled; the formats email, uri, uuid, ipv4, ipv6 and
// date-time must satisfy both the JSON Schema definition and the check
// Validate (or codec.Bind, for date-time) applies, so a value Check accepts
// is accepted after binding too. Vendor keywords (KeywordSecret,
// KeywordValidate, any other "x-...") are allowed. Only "$ref"s into the
// document itself are resolved; nothing is fetched.
func Compile(doc []byte) (*Schema, error) {
	forUs, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("schema: parse JSON Schema: %w", err)
	}
	forCompiler, _ := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	c := newCompiler()
	if err := c.AddResource(schemaLocation, forCompiler); err != nil {
		return nil, fmt.Errorf("schema: compile JSON Schema: %w", err)
	}
	compiled, err := c.Compile(schemaLocation)
	if err != nil {
		return nil, fmt.Errorf("schema: compile JSON Schema: %w", err)
	}
	s := &Schema{doc: forUs, compiled: compiled}
	s.collectSecrets(forUs, "", map[uintptr]bool{})
	sort.Strings(s.secrets)
	return s, nil
}

func newCompiler() *jsonschema.Compiler {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	c.UseLoader(noLoader{})
	for _, f := range strictFormats() {
		c.RegisterFormat(f)
	}
	return c
}

// noLoader refuses every external reference: a schema from etcd must not make
// the CLI read files or the network. The draft meta-schemas are built in.
type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("external reference %q not allowed", u)
}

// strictFormats returns the formats Compile registers: the standard check
// and the validator's (or the binder's) check together.
var strictFormats = sync.OnceValue(func() []*jsonschema.Format {
	extra := map[string]func(string) bool{
		"email": func(s string) bool { return validate.Var(s, "email") == nil },
		"uri":   func(s string) bool { return validate.Var(s, "url") == nil && validate.Var(s, "uri") == nil },
		"uuid":  func(s string) bool { return validate.Var(s, "uuid") == nil },
		"ipv4":  func(s string) bool { return validate.Var(s, "ipv4") == nil },
		"ipv6":  func(s string) bool { return validate.Var(s, "ipv6") == nil },
		"date-time": func(s string) bool {
			var t time.Time
			return t.UnmarshalText([]byte(s)) == nil
		},
	}
	var out []*jsonschema.Format
	for name, ok := range extra {
		std := jsonschema.NewCompiler()
		std.AssertFormat()
		if err := std.AddResource("strata:///format.json", map[string]any{"format": name}); err != nil {
			panic(err)
		}
		sch := std.MustCompile("strata:///format.json")
		out = append(out, &jsonschema.Format{Name: name, Validate: func(v any) error {
			s, isString := v.(string)
			if !isString {
				return nil
			}
			if sch.Validate(s) != nil || !ok(s) {
				return fmt.Errorf("not a valid %s", name)
			}
			return nil
		}})
	}
	return out
})
