package canary

import (
	"fmt"
	"strings"
)

// Requirement is one term of a selector: label Key equals (or, with Not,
// differs from) Value. An instance without the label differs from every
// value.
type Requirement struct {
	Key, Value string
	Not        bool
}

// Selector is a conjunction of label requirements, written as
// "zone=eu-1,tier!=batch". The empty selector matches every instance.
type Selector []Requirement

// ParseSelector reads a selector: terms separated by commas, each
// "key=value", "key==value" or "key!=value", with no empty key.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var out Selector
	for _, term := range strings.Split(s, ",") {
		term = strings.TrimSpace(term)
		var r Requirement
		var ok bool
		if r.Key, r.Value, ok = strings.Cut(term, "!="); ok {
			r.Not = true
		} else if r.Key, r.Value, ok = strings.Cut(term, "=="); !ok {
			r.Key, r.Value, ok = strings.Cut(term, "=")
		}
		r.Key, r.Value = strings.TrimSpace(r.Key), strings.TrimSpace(r.Value)
		if !ok || r.Key == "" || strings.ContainsAny(r.Key, "=!") || strings.ContainsAny(r.Value, "=!") {
			return nil, fmt.Errorf("selector %q: term %q is not key=value or key!=value", s, term)
		}
		out = append(out, r)
	}
	return out, nil
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		if (ok && v == r.Value) == r.Not {
			return false
		}
	}
	return true
}

// String writes the selector back in its canonical form.
func (s Selector) String() string {
	terms := make([]string, len(s))
	for i, r := range s {
		op := "="
		if r.Not {
			op = "!="
		}
		terms[i] = r.Key + op + r.Value
	}
	return strings.Join(terms, ",")
}
