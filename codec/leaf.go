package codec

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// DecodeLeaf converts one leaf value (text or typed, as in Bind) into dst, a
// settable reflect.Value. A nil v leaves dst unchanged. When v is a mapping
// or a sequence that fails in more than one place, or below the top, the
// error is a *BindError whose paths are relative to v. On error dst is left
// unchanged.
func DecodeLeaf(v any, dst reflect.Value) error {
	if !dst.IsValid() || !dst.CanSet() {
		return errors.New("codec: DecodeLeaf needs a settable value")
	}
	tmp := reflect.New(dst.Type()).Elem()
	tmp.Set(dst)
	var d decoder
	d.decode(at{}, v, tmp)
	switch {
	case len(d.errs) == 1 && d.errs[0].Path == "":
		return d.errs[0].Err
	case len(d.errs) > 0:
		return d.bindError()
	}
	dst.Set(tmp)
	return nil
}

// decode sets dst, which is addressable and settable, from v.
func (d *decoder) decode(a at, v any, dst reflect.Value) {
	if IsNil(v) {
		return
	}
	t := dst.Type()
	if reflect.TypeOf(v) == t {
		dst.Set(cloneValue(v))
		return
	}
	switch {
	case t.Kind() == reflect.Pointer:
		if t.Elem() == t {
			d.failf(a, v, "unsupported type %s", t)
			return
		}
		p := reflect.New(t.Elem())
		if !dst.IsNil() {
			p.Elem().Set(dst.Elem())
		}
		d.decode(a, v, p.Elem())
		dst.Set(p)
		return
	case t.Kind() == reflect.Interface:
		switch {
		case t.NumMethod() == 0:
			dst.Set(reflect.ValueOf(DeepCopy(v)))
		case reflect.TypeOf(v).Implements(t):
			dst.Set(reflect.ValueOf(v))
		default:
			d.failf(a, v, "%s does not implement %s", reflect.TypeOf(v), t)
		}
		return
	case reflect.PointerTo(t).Implements(textUnmarshalerType):
		d.decodeText(a, v, dst)
		return
	case t == durationType:
		d.decodeDuration(a, v, dst)
		return
	case isMapper(t):
		d.decodeMapper(a, v, dst)
		return
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := LeafText(v)
		if !ok {
			d.failf(a, v, "expected text, got %s", describe(v))
			return
		}
		dst.SetString(s)
	case reflect.Bool:
		d.decodeBool(a, v, dst)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		d.decodeInt(a, v, dst)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		d.decodeUint(a, v, dst)
	case reflect.Float32, reflect.Float64:
		d.decodeFloat(a, v, dst)
	case reflect.Struct:
		m, ok := d.mapping(a, v)
		if ok {
			d.bindStruct(a, m, dst)
		}
	case reflect.Map:
		d.decodeMap(a, v, dst)
	case reflect.Slice, reflect.Array:
		d.decodeSeq(a, v, dst)
	default:
		d.failf(a, v, "unsupported type %s", t)
	}
}

func (d *decoder) decodeText(a at, v any, dst reflect.Value) {
	s, ok := LeafText(v)
	if !ok {
		d.failf(a, v, "expected text for %s, got %s", dst.Type(), describe(v))
		return
	}
	p := reflect.New(dst.Type())
	if err := p.Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
		d.fail(a, v, fmt.Errorf("cannot parse %s as %s: %w", quote(s), dst.Type(), err))
		return
	}
	dst.Set(p.Elem())
}

func (d *decoder) decodeDuration(a at, v any, dst reflect.Value) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
		s := rv.String()
		dur, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			d.fail(a, v, fmt.Errorf("cannot parse %s as duration: %w", quote(s), err))
			return
		}
		dst.SetInt(int64(dur))
		return
	}
	d.decodeInt(a, v, dst) // a typed number counts nanoseconds
}

func (d *decoder) decodeBool(a at, v any, dst reflect.Value) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Bool:
		dst.SetBool(rv.Bool())
	case reflect.String:
		b, err := strconv.ParseBool(strings.TrimSpace(rv.String()))
		if err != nil {
			d.failf(a, v, "cannot parse %s as bool", quote(rv.String()))
			return
		}
		dst.SetBool(b)
	default:
		d.failf(a, v, "expected bool, got %s", describe(v))
	}
}

// typeName names dst's type in messages: its kind for the plain numeric
// kinds, "duration" for time.Duration.
func typeName(t reflect.Type) string {
	if t == durationType {
		return "duration"
	}
	return t.Kind().String()
}

func (d *decoder) decodeInt(a at, v any, dst reflect.Value) {
	name := typeName(dst.Type())
	var i int64
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i = rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			d.failf(a, v, "value %d overflows %s", u, name)
			return
		}
		i = int64(u)
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			d.failf(a, v, "cannot convert %v to %s: not an integer", f, name)
			return
		}
		if f < math.MinInt64 || f >= math.MaxInt64 {
			d.failf(a, v, "value %v overflows %s", f, name)
			return
		}
		i = int64(f)
	case reflect.String:
		s := strings.TrimSpace(rv.String())
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.failf(a, v, "value %s overflows %s", s, name)
			} else {
				d.failf(a, v, "cannot parse %s as %s", quote(rv.String()), name)
			}
			return
		}
		i = n
	default:
		d.failf(a, v, "expected %s, got %s", name, describe(v))
		return
	}
	if dst.OverflowInt(i) {
		d.failf(a, v, "value %d overflows %s", i, name)
		return
	}
	dst.SetInt(i)
}

func (d *decoder) decodeUint(a at, v any, dst reflect.Value) {
	name := typeName(dst.Type())
	var u uint64
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		i := rv.Int()
		if i < 0 {
			d.failf(a, v, "value %d overflows %s", i, name)
			return
		}
		u = uint64(i)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u = rv.Uint()
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if f != math.Trunc(f) || math.IsInf(f, 0) {
			d.failf(a, v, "cannot convert %v to %s: not an integer", f, name)
			return
		}
		if f < 0 || f >= math.MaxUint64 {
			d.failf(a, v, "value %v overflows %s", f, name)
			return
		}
		u = uint64(f)
	case reflect.String:
		s := strings.TrimSpace(rv.String())
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			if _, ierr := strconv.ParseInt(s, 10, 64); errors.Is(err, strconv.ErrRange) || ierr == nil || errors.Is(ierr, strconv.ErrRange) {
				d.failf(a, v, "value %s overflows %s", s, name)
			} else {
				d.failf(a, v, "cannot parse %s as %s", quote(rv.String()), name)
			}
			return
		}
		u = n
	default:
		d.failf(a, v, "expected %s, got %s", name, describe(v))
		return
	}
	if dst.OverflowUint(u) {
		d.failf(a, v, "value %d overflows %s", u, name)
		return
	}
	dst.SetUint(u)
}

func (d *decoder) decodeFloat(a at, v any, dst reflect.Value) {
	name := typeName(dst.Type())
	var f float64
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		f = float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		f = float64(rv.Uint())
	case reflect.Float32, reflect.Float64:
		f = rv.Float()
	case reflect.String:
		s := strings.TrimSpace(rv.String())
		n, err := strconv.ParseFloat(s, dst.Type().Bits())
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				d.failf(a, v, "value %s overflows %s", s, name)
			} else {
				d.failf(a, v, "cannot parse %s as %s", quote(rv.String()), name)
			}
			return
		}
		f = n
	default:
		d.failf(a, v, "expected %s, got %s", name, describe(v))
		return
	}
	if dst.OverflowFloat(f) {
		d.failf(a, v, "value %v overflows %s", f, name)
		return
	}
	dst.SetFloat(f)
}

// mapping returns v as a map[string]any: v itself, a map with string keys,
// a Mapper, or JSON text holding an object.
func (d *decoder) mapping(a at, v any) (map[string]any, bool) {
	if m, ok := v.(map[string]any); ok {
		return m, true
	}
	rv := reflect.ValueOf(v)
	switch {
	case isMapper(rv.Type()):
		mv := v.(Mapper)
		m := make(map[string]any, mv.MapperLen())
		for k, e := range mv.MapperAll() {
			m[k] = e.Interface()
		}
		return m, true
	case rv.Kind() == reflect.Map && rv.Type().Key().Kind() == reflect.String:
		m := make(map[string]any, rv.Len())
		for it := rv.MapRange(); it.Next(); {
			m[it.Key().String()] = it.Value().Interface()
		}
		return m, true
	case rv.Kind() == reflect.String && strings.HasPrefix(strings.TrimSpace(rv.String()), "{"):
		j, err := ParseJSONText(rv.String())
		if err != nil {
			d.fail(a, v, fmt.Errorf("cannot parse %s as a JSON object: %w", quote(rv.String()), err))
			return nil, false
		}
		if m, ok := j.(map[string]any); ok {
			return m, true
		}
	}
	d.failf(a, v, "expected a mapping, got %s", describe(v))
	return nil, false
}

// sequence returns v as a list of elements: a slice or array, an index
// mapping with keys exactly "0".."n-1", or JSON text holding an array.
func (d *decoder) sequence(a at, v any) ([]any, bool) {
	if s, ok := v.([]any); ok {
		return s, true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		s := make([]any, rv.Len())
		for i := range s {
			s[i] = rv.Index(i).Interface()
		}
		return s, true
	case reflect.Map:
		if m, ok := v.(map[string]any); ok {
			if s, ok := IndexMapping(m); ok {
				return s, true
			}
		}
	case reflect.String:
		if strings.HasPrefix(strings.TrimSpace(rv.String()), "[") {
			j, err := ParseJSONText(rv.String())
			if err != nil {
				d.fail(a, v, fmt.Errorf("cannot parse %s as a JSON array: %w", quote(rv.String()), err))
				return nil, false
			}
			if s, ok := j.([]any); ok {
				return s, true
			}
		}
	}
	d.failf(a, v, "expected a sequence, got %s", describe(v))
	return nil, false
}

// IndexMapping returns the values of m in index order when its keys are
// exactly "0", "1", ... "n-1", the shape etcd keys servers/0/host give,
// and nil, false for any other keys. Bind reads such a mapping as a
// sequence wherever it binds a slice or an array.
func IndexMapping(m map[string]any) ([]any, bool) {
	s := make([]any, len(m))
	for i := range s {
		v, ok := m[strconv.Itoa(i)]
		if !ok {
			return nil, false
		}
		s[i] = v
	}
	return s, true
}

func (d *decoder) decodeSeq(a at, v any, dst reflect.Value) {
	elems, ok := d.sequence(a, v)
	if !ok {
		return
	}
	t := dst.Type()
	var out reflect.Value
	if t.Kind() == reflect.Array {
		if len(elems) > t.Len() {
			d.failf(a, v, "expected at most %d elements, got %d", t.Len(), len(elems))
			return
		}
		out = reflect.New(t).Elem()
	} else {
		out = reflect.MakeSlice(t, len(elems), len(elems))
	}
	a = a.joined()
	for i, e := range elems {
		d.decode(a.child(strconv.Itoa(i)), e, out.Index(i))
	}
	dst.Set(out)
}

func (d *decoder) decodeMap(a at, v any, dst reflect.Value) {
	m, ok := d.mapping(a, v)
	if !ok {
		return
	}
	t := dst.Type()
	out := reflect.MakeMapWithSize(t, dst.Len()+len(m))
	for it := dst.MapRange(); it.Next(); {
		out.SetMapIndex(it.Key(), it.Value())
	}
	// Keys of a string kind are taken as they are: distinct in m, distinct
	// in out, so the order they are set in does not matter. Other keys are
	// converted, and two may become one ("1" and "01" as ints): in sorted
	// order, the later one is decoded over the earlier one's value.
	plain := t.Key().Kind() == reflect.String && !reflect.PointerTo(t.Key()).Implements(textUnmarshalerType)
	merge := out.Len() > 0 || !plain // an entry may already be there
	a = a.joined()
	key := reflect.New(t.Key()).Elem()
	elem := reflect.New(t.Elem()).Elem()
	entry := func(k string, v any) {
		ka := a.child(k)
		if plain {
			key.SetString(k)
		} else {
			key.SetZero()
			n := len(d.errs)
			d.decode(ka, k, key)
			if len(d.errs) > n {
				return
			}
		}
		elem.SetZero()
		if merge {
			if old := out.MapIndex(key); old.IsValid() {
				elem.Set(old)
			}
		}
		d.decode(ka, v, elem)
		out.SetMapIndex(key, elem) // copies key and elem: both are reused
	}
	if plain {
		for k, v := range m {
			entry(k, v)
		}
	} else {
		for _, k := range sortedKeys(m) {
			entry(k, m[k])
		}
	}
	dst.Set(out)
}

// decodeMapper merges the mapping v into dst, a Mapper: each entry is
// decoded as decodeMap decodes a Go map's, over the value dst holds at its
// key, and all are set with one MapperWith, once all have decoded.
func (d *decoder) decodeMapper(a at, v any, dst reflect.Value) {
	old, ok := mapperValue(dst)
	if !ok {
		d.failf(a, v, "unsupported type %s", dst.Type())
		return
	}
	m, ok := d.mapping(a, v)
	if !ok || len(m) == 0 {
		return
	}
	keys := make([]string, 0, len(m))
	elems := reflect.MakeSlice(reflect.SliceOf(old.MapperElem()), len(m), len(m))
	merge := old.MapperLen() > 0 // an entry may already be there
	a = a.joined()
	n := len(d.errs)
	for k, v := range m {
		elem := elems.Index(len(keys))
		if merge {
			if prev, ok := old.MapperGet(k); ok {
				elem.Set(prev)
			}
		}
		d.decode(a.child(k), v, elem)
		keys = append(keys, k)
	}
	if len(d.errs) > n {
		return
	}
	nm := old.MapperWith(func(yield func(string, reflect.Value) bool) {
		for i, k := range keys {
			if !yield(k, elems.Index(i)) {
				return
			}
		}
	})
	if err := setMapper(dst, nm); err != nil {
		d.fail(a, v, err)
	}
}

// sortedKeys returns the keys of m in sorted order.
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// LeafText returns the text Bind gives a string (or TextUnmarshaler) field
// for the leaf v: a string as is, a TextMarshaler's text, a bool
// "true"/"false", an integer in decimal, a float formatted 'g' with the
// fewest digits that read back the same. ok is false for mappings,
// sequences and other composite values, and for a TextMarshaler that fails.
func LeafText(v any) (string, bool) {
	if tm, ok := v.(encoding.TextMarshaler); ok {
		if b, err := tm.MarshalText(); err == nil {
			return string(b), true
		}
		return "", false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, rv.Type().Bits()), true
	}
	return "", false
}

// ParseJSONText decodes JSON text held in a leaf (a slice, map or struct
// value written as text). Numbers become int64 when integral and in range,
// else uint64, else float64 (so -0 stays -0).
func ParseJSONText(s string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("text after the JSON value")
	}
	return jsonNumbers(v), nil
}

func jsonNumbers(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = jsonNumbers(e)
		}
	case []any:
		for i, e := range v {
			v[i] = jsonNumbers(e)
		}
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil && (i != 0 || v[0] != '-') {
			return i
		}
		if u, err := strconv.ParseUint(string(v), 10, 64); err == nil {
			return u
		}
		if f, err := strconv.ParseFloat(string(v), 64); err == nil {
			return f
		}
		return string(v)
	}
	return v
}

// cloneValue returns v, a value of its field's own type, as the field
// takes it: the maps and lists of a tree (map[string]any, []any) are copied
// all the way down, and other slices and maps one level (see cloneShallow),
// so that the bound struct shares no container with the tree, whose maps
// may be shared with the layers it was merged from.
func cloneValue(v any) reflect.Value {
	switch v.(type) {
	case map[string]any, []any:
		return reflect.ValueOf(DeepCopy(v))
	}
	return cloneShallow(reflect.ValueOf(v))
}

// cloneShallow returns v, or for a slice or map a copy of it, so that the
// bound struct shares no backing storage with the tree. A Mapper is never
// modified: it is shared.
func cloneShallow(v reflect.Value) reflect.Value {
	if isMapper(v.Type()) {
		return v
	}
	switch v.Kind() {
	case reflect.Slice:
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		reflect.Copy(c, v)
		return c
	case reflect.Map:
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(it.Key(), it.Value())
		}
		return c
	}
	return v
}

// DeepCopy returns a copy of a tree value in which every map[string]any and
// []any is copied, recursively; other values (leaves) are shared.
func DeepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		c := make(map[string]any, len(v))
		for k, e := range v {
			c[k] = DeepCopy(e)
		}
		return c
	case []any:
		c := make([]any, len(v))
		for i, e := range v {
			c[i] = DeepCopy(e)
		}
		return c
	}
	return v
}

// describe names a value for messages: `string "x"`, `int 5`, "mapping".
func describe(v any) string {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return "string " + quote(rv.String())
	case reflect.Map:
		return "mapping"
	case reflect.Struct:
		if isMapper(rv.Type()) {
			return "mapping"
		}
	case reflect.Slice, reflect.Array:
		return "sequence"
	}
	return fmt.Sprintf("%T %v", v, v)
}

// quote quotes text for messages, shortened past 64 bytes.
func quote(s string) string {
	const limit = 64
	if len(s) <= limit {
		return strconv.Quote(s)
	}
	cut := limit
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
