package schema

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// flatten appends one FieldError per leaf failure of e. doc is the value
// e's InstanceLocation is relative to, base the path of doc, and root the
// whole document checked.
func (s *Schema) flatten(e *jsonschema.ValidationError, root, doc any, base []string, out *[]FieldError) {
	loc := concat(base, e.InstanceLocation)
	rel := e.InstanceLocation
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		for _, m := range k.Missing {
			f := FieldError{Path: joinTokens(concat(loc, []string{m})), Rule: "required"}
			if s.secretAt(concat(loc, []string{m})) {
				f.Value, f.Secret = Masked, true
			}
			*out = append(*out, f)
		}
		return
	case *kind.AdditionalProperties:
		for _, p := range k.Properties {
			ploc := concat(loc, []string{p})
			*out = append(*out, s.fieldError(ploc, "additionalProperties", "", valueAt(doc, concat(rel, []string{p}))))
		}
		return
	case *kind.PropertyNames:
		// Works around santhosh-tekuri/jsonschema#258: the validator
		// gives a propertyNames failure a wrong InstanceLocation (empty,
		// or another object's: v6.0.3 hands out its own location slice,
		// which later appends overwrite) and the "propertyNames" schema
		// itself as SchemaURL. So the objects holding the key are found
		// by walking the document along the schema to those checked by
		// the schema that owns this "propertyNames" (objectsWithSchema);
		// loc is only the fallback. The workaround can go once go.mod
		// requires a release that fixes #258: then use loc alone and
		// delete objectsWithSchema; the propertyNames cases of
		// TestFlatten check the paths either way.
		objects := s.objectsWithSchema(root, e.SchemaURL, k.Property)
		if len(objects) == 0 {
			objects = [][]string{loc}
		}
		for _, o := range objects {
			kloc := concat(o, []string{k.Property})
			var sub []FieldError
			for _, c := range e.Causes {
				s.flatten(c, root, k.Property, kloc, &sub)
			}
			if len(sub) == 0 {
				sub = append(sub, s.fieldError(kloc, "propertyNames", "", k.Property))
			}
			*out = append(*out, sub...)
		}
		return
	case *kind.AnyOf, *kind.OneOf:
		rule := k.KeywordPath()[0]
		if o, ok := k.(*kind.OneOf); ok && o.Subschemas != nil { // several matched
			*out = append(*out, s.fieldError(loc, rule, "", valueAt(doc, rel)))
			return
		}
		var sub []FieldError
		for _, c := range e.Causes {
			s.flatten(c, root, doc, base, &sub)
		}
		if len(sub) > 0 {
			same := true
			var params []string
			for _, f := range sub {
				same = same && f.Path == sub[0].Path && f.Rule == sub[0].Rule
				if !containsString(params, f.Param) {
					params = append(params, f.Param)
				}
			}
			if same {
				f := sub[0]
				f.Param = strings.Join(params, "|")
				*out = append(*out, f)
				return
			}
		}
		*out = append(*out, s.fieldError(loc, rule, "", valueAt(doc, rel)))
		return
	case *kind.Not:
		*out = append(*out, s.fieldError(loc, "not", s.notParam(e.SchemaURL), valueAt(doc, rel)))
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			s.flatten(c, root, doc, base, out)
		}
		return
	}
	rule := "schema"
	if kp := e.ErrorKind.KeywordPath(); len(kp) > 0 {
		rule = kp[0]
	} else {
		switch e.ErrorKind.(type) {
		case *kind.FalseSchema:
			rule = "false"
		case *kind.InvalidJsonValue:
			rule = "type"
		}
	}
	*out = append(*out, s.fieldError(loc, rule, paramOf(e.ErrorKind), valueAt(doc, rel)))
}

// objectsWithSchema returns the locations in doc of the objects that hold
// key and are checked by the schema whose "propertyNames" is at
// propertyNamesURL. It follows "properties", "additionalProperties",
// "prefixItems", "items" and local "$ref"s, as coercion does. It stands in
// for the location the validator should report (see flatten).
func (s *Schema) objectsWithSchema(doc any, propertyNamesURL, key string) [][]string {
	frag, ok := fragment(propertyNamesURL)
	if !ok {
		return nil
	}
	want, ok := strings.CutSuffix(frag, "/propertyNames")
	if !ok {
		return nil
	}
	var found [][]string
	var walk func(v any, node any, ptr string, loc []string, depth int)
	walk = func(v any, node any, ptr string, loc []string, depth int) {
		if node == nil || depth > 256 {
			return
		}
		m, ptr := s.resolve(node, ptr)
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v[key]; ok && ptr == want {
				found = append(found, loc)
			}
			for k, e := range v {
				if sub, rel := propChild(m, k); sub != nil {
					walk(e, sub, ptr+rel, concat(loc, []string{k}), depth+1)
				}
			}
		case []any:
			for i, e := range v {
				if sub, rel := itemChild(m, i); sub != nil {
					walk(e, sub, ptr+rel, concat(loc, []string{strconv.Itoa(i)}), depth+1)
				}
			}
		}
	}
	walk(doc, s.doc, "", nil, 0)
	return found
}

// notParam returns the forbidden value of the "not" of the schema at
// schemaURL, when it is a "const" (or an "anyOf" of them).
func (s *Schema) notParam(schemaURL string) string {
	frag, ok := fragment(schemaURL)
	if !ok {
		return ""
	}
	not := asObj(asObj(s.lookup(frag))["not"])
	if c, ok := not["const"]; ok {
		return fmt.Sprintf("%v", c)
	}
	var vals []string
	alts, _ := not["anyOf"].([]any)
	for _, a := range alts {
		if c, ok := asObj(a)["const"]; ok {
			vals = append(vals, fmt.Sprintf("%v", c))
		}
	}
	return strings.Join(vals, " ")
}

// paramOf renders the parameter of a failed keyword.
func paramOf(k jsonschema.ErrorKind) string {
	switch k := k.(type) {
	case *kind.Type:
		return strings.Join(k.Want, "|")
	case *kind.Enum:
		vals := make([]string, len(k.Want))
		for i, v := range k.Want {
			vals[i] = fmt.Sprintf("%v", v)
		}
		return strings.Join(vals, " ")
	case *kind.Const:
		return fmt.Sprintf("%v", k.Want)
	case *kind.Format:
		return k.Want
	case *kind.Pattern:
		return k.Want
	case *kind.MinLength:
		return strconv.Itoa(k.Want)
	case *kind.MaxLength:
		return strconv.Itoa(k.Want)
	case *kind.MinItems:
		return strconv.Itoa(k.Want)
	case *kind.MaxItems:
		return strconv.Itoa(k.Want)
	case *kind.MinProperties:
		return strconv.Itoa(k.Want)
	case *kind.MaxProperties:
		return strconv.Itoa(k.Want)
	case *kind.Minimum:
		return ratString(k.Want)
	case *kind.Maximum:
		return ratString(k.Want)
	case *kind.ExclusiveMinimum:
		return ratString(k.Want)
	case *kind.ExclusiveMaximum:
		return ratString(k.Want)
	case *kind.MultipleOf:
		return ratString(k.Want)
	}
	return ""
}

// ratString renders a bound: an integer in full, other numbers as the
// nearest float64, formatted 'g' with the fewest digits.
func ratString(r *big.Rat) string {
	if r == nil {
		return ""
	}
	if r.IsInt() {
		return r.Num().String()
	}
	f, _ := r.Float64()
	return strconv.FormatFloat(f, 'g', -1, 64)
}
