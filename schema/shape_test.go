package schema_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strataconf/strata/schema"
)

// A string field gets a string: a list or an object there is refused (as
// codec.Bind refuses it), not turned into JSON text.
func TestCheckDocumentShapes(t *testing.T) {
	s, err := schema.Compile([]byte(`{
	  "type": "object",
	  "properties": {
	    "name": {"type": "string"},
	    "pw": {"type": "string", "x-secret": true},
	    "tags": {"type": "array", "items": {"type": "string"}},
	    "either": {"type": ["string", "array"]},
	    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
	    "any": {},
	    "port": {"type": "integer"}
	  }
	}`))
	if err != nil {
		t.Fatal(err)
	}
	ok := map[string]any{
		"name":   "x",
		"tags":   []any{"a", "b"},
		"either": []any{"a"},
		"labels": map[string]any{"a": "b"},
		"any":    map[string]any{"a": []any{1}},
		"port":   "80",
	}
	if err := s.CheckDocument(ok); err != nil {
		t.Errorf("CheckDocument(valid) = %v", err)
	}
	bad := map[string]any{
		"name":   []any{"a", "b"},
		"pw":     map[string]any{"k": "Sekr1t"},
		"tags":   []any{"a", []any{"nested"}},
		"labels": map[string]any{"a": map[string]any{"b": "c"}},
		"port":   []any{80},
	}
	err = s.CheckDocument(bad)
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("CheckDocument = %v, want *ValidationError", err)
	}
	// The members of a value of the wrong shape are not described by the
	// schema: they are masked, the shape is shown.
	want := "invalid config: labels.a: failed type=string (value map[b:******]); name: failed type=string (value \"[****** ******]\"); " +
		"port: failed type=integer (value [******]); pw: failed type=string (value ******); tags.1: failed type=string (value [******])"
	if err.Error() != want {
		t.Errorf("CheckDocument:\n got %v\nwant %s", err, want)
	}
	if strings.Contains(err.Error(), "Sekr1t") {
		t.Error("secret shown")
	}
}
