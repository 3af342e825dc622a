package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// jsonDuplicate finds the first key that appears twice in one object of a
// well-formed JSON document, as YAML and TOML parsers refuse it; it returns
// the key's dotted path and its byte offset, or ok false.
func jsonDuplicate(b []byte) (path string, offset int64, ok bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	type frame struct {
		object bool
		seen   map[string]bool
		path   string
		key    string // the object's pending key; "" when a key comes next
		index  int    // the array's next element
		expect bool   // the object expects a key next
	}
	var stack []*frame
	child := func() string { // the path of the value about to start
		if len(stack) == 0 {
			return ""
		}
		f := stack[len(stack)-1]
		seg := f.key
		if !f.object {
			seg = strconv.Itoa(f.index)
		}
		if f.path == "" {
			return seg
		}
		return f.path + "." + seg
	}
	done := func() { // a value ended inside the top frame
		if len(stack) == 0 {
			return
		}
		f := stack[len(stack)-1]
		if f.object {
			f.expect = true
		} else {
			f.index++
		}
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return "", 0, false
		}
		if len(stack) > 0 && stack[len(stack)-1].object && stack[len(stack)-1].expect {
			f := stack[len(stack)-1]
			if k, isKey := tok.(string); isKey {
				if f.seen[k] {
					p := k
					if f.path != "" {
						p = f.path + "." + k
					}
					return p, d.InputOffset(), true
				}
				f.seen[k] = true
				f.key, f.expect = k, false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{object: true, seen: map[string]bool{}, path: child(), expect: true})
		case json.Delim('['):
			stack = append(stack, &frame{path: child()})
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			done()
			if len(stack) == 0 {
				return "", 0, false
			}
		default:
			done()
		}
	}
}

// duplicateError reports a key given twice in a JSON document.
func duplicateError(b []byte, path string, offset int64) error {
	line, col := position(b, int(offset))
	return &SyntaxError{Format: "json", Line: line, Column: col, Err: fmt.Errorf("duplicate key %s: a key may appear once in an object", path)}
}
