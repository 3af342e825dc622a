package codec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	kjson "github.com/knadh/koanf/parsers/json"
	"go.yaml.in/yaml/v3"
)

// ErrInexactNumber is wrapped by the error of a document holding a number
// that no int64, uint64 or float64 holds exactly (an integer beyond the
// range of uint64, or a decimal with more digits than a float64 keeps).
// Such a number is refused rather than rounded.
var ErrInexactNumber = errors.New("cannot be kept exactly as a 64-bit integer or float: quote it to keep it as text")

// jsonParser is a koanf parser (the interface koanf.Parser) for JSON that
// decodes numbers exactly: integers as int64 (uint64 above the int64
// range), other numbers as float64 when that float is the number written,
// and refuses any other number (ErrInexactNumber). It marshals as koanf's
// JSON parser does.
type jsonParser struct{}

// Unmarshal decodes a JSON object. A malformed document gives the error
// encoding/json gives for it.
func (jsonParser) Unmarshal(b []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	err := d.Decode(&m)
	if err == nil && len(bytes.TrimSpace(b[d.InputOffset():])) > 0 {
		err = errors.New("text after the JSON value")
	}
	if err != nil {
		// encoding/json's own error for the document: the same message
		// and offset as decoding it in one go.
		if uerr := json.Unmarshal(b, new(map[string]any)); uerr != nil {
			return nil, uerr
		}
		return nil, err
	}
	v, err := exactJSONNumbers(m, nil)
	if err != nil {
		return nil, err
	}
	out, _ := v.(map[string]any)
	return out, nil
}

// Marshal encodes m as koanf's JSON parser does.
func (jsonParser) Marshal(m map[string]any) ([]byte, error) {
	return kjson.Parser().Marshal(m)
}

// numberError is the error of the number at path. It names the path, not
// the number: the document may hold a secret there.
func numberError(path []string) error {
	return fmt.Errorf("%s: number %w", strings.Join(path, "."), ErrInexactNumber)
}

// exactJSONNumbers replaces the json.Numbers in v by exact Go numbers.
func exactJSONNumbers(v any, path []string) (any, error) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			n, err := exactJSONNumbers(e, append(path[:len(path):len(path)], k))
			if err != nil {
				return nil, err
			}
			v[k] = n
		}
	case []any:
		for i, e := range v {
			n, err := exactJSONNumbers(e, append(path[:len(path):len(path)], strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			v[i] = n
		}
	case json.Number:
		n, ok := exactNumber(string(v))
		if !ok {
			return nil, numberError(path)
		}
		return n, nil
	}
	return v, nil
}

// exactNumber converts a JSON number literal to int64, else uint64, else
// float64 when that float is exactly the number written ("-0" stays a
// negative zero float). ok is false when none holds it exactly.
func exactNumber(lit string) (v any, ok bool) {
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil && (i != 0 || lit[0] != '-') {
		return i, true
	}
	if u, err := strconv.ParseUint(lit, 10, 64); err == nil {
		return u, true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || !exactFloat(lit, f) {
		return nil, false
	}
	return f, true
}

// exactFloat reports whether the decimal literal lit is exactly the number
// f prints as (its shortest decimal), so that f keeps what was written.
func exactFloat(lit string, f float64) bool {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return false
	}
	a, ok1 := canonDecimal(lit)
	b, ok2 := canonDecimal(strconv.FormatFloat(f, 'g', -1, 64))
	return ok1 && ok2 && a == b
}

// decimal is a decimal number as sign, significant digits (no leading or
// trailing zeros; empty for zero) and exponent: digits × 10^exp.
type decimal struct {
	neg    bool
	digits string
	exp    int
}

// canonDecimal reads a decimal literal ("-1.50e+3", "0.1", "1500").
func canonDecimal(s string) (decimal, bool) {
	var d decimal
	switch {
	case strings.HasPrefix(s, "-"):
		d.neg, s = true, s[1:]
	case strings.HasPrefix(s, "+"):
		s = s[1:]
	}
	mant, exp, hasExp := strings.Cut(strings.ToLower(s), "e")
	if hasExp {
		e, err := strconv.Atoi(exp)
		if err != nil || e > 1<<20 || e < -(1<<20) {
			return d, false
		}
		d.exp = e
	}
	intPart, frac, _ := strings.Cut(mant, ".")
	digits := intPart + frac
	if digits == "" {
		return d, false
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return d, false
		}
	}
	d.exp -= len(frac)
	digits = strings.TrimLeft(digits, "0")
	trimmed := strings.TrimRight(digits, "0")
	d.exp += len(digits) - len(trimmed)
	d.digits = trimmed
	if d.digits == "" {
		d.exp = 0 // zero; the sign is kept: -0 is not 0
	}
	return d, true
}

// checkYAMLNumbers refuses a YAML document holding a number that its
// decoded float64 does not keep exactly: an integer beyond the int64 and
// uint64 ranges (which go.yaml.in/yaml reads as a float), or a decimal with
// more digits than a float64 keeps. ".inf" and ".nan" are kept.
func checkYAMLNumbers(b []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil // the decoder reports it
	}
	var walk func(n *yaml.Node, path []string, depth int) error
	walk = func(n *yaml.Node, path []string, depth int) error {
		if n == nil || depth > 10000 {
			return nil
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				if err := walk(c, path, depth+1); err != nil {
					return err
				}
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := append(path[:len(path):len(path)], n.Content[i].Value)
				if err := walk(n.Content[i+1], p, depth+1); err != nil {
					return err
				}
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				if err := walk(c, append(path[:len(path):len(path)], strconv.Itoa(i)), depth+1); err != nil {
					return err
				}
			}
		case yaml.ScalarNode:
			if n.ShortTag() != "!!float" {
				return nil
			}
			text := strings.ReplaceAll(n.Value, "_", "")
			switch strings.ToLower(strings.TrimLeft(text, "+-")) {
			case ".inf", ".nan":
				return nil
			}
			f, err := strconv.ParseFloat(text, 64)
			if err == nil && exactFloat(text, f) {
				return nil
			}
			if err != nil && !errors.Is(err, strconv.ErrRange) {
				return nil // not a decimal literal: the decoder decides
			}
			return &SyntaxError{Format: "yaml", Line: n.Line, Column: n.Column, Err: numberError(path)}
		}
		return nil
	}
	return walk(&doc, nil, 0)
}
