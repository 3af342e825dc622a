package codec

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unsafe"
)

// Patched returns a copy of *v in which the leaf at a dotted config path
// (keys spelled as the fields', see Canonical) holds value, decoded as Bind
// decodes it, or, with remove, is gone: a field reset to its zero value, a
// map entry deleted. The copy shares everything with *v but the containers
// on the way to the leaf, which are copied (a map of n entries costs a copy
// of n entries; a Mapper is not copied but given the entry with MapperWith
// or MapperWithout); *v is not modified. With a Patcher, containers copied
// earlier in its batch are modified in place instead, and a map copied
// ahead by its Commit is taken instead of being copied now.
//
// ok is false when the leaf cannot be patched alone, and the whole tree must
// be bound instead: the path goes through a slice, an array, an interface,
// a map with keys that are not strings, a field promoted through an
// embedded pointer, or a nil pointer on the way to a removed leaf; a key
// names no field; the leaf is not a scalar (a struct, map or list given as
// one value); or value does not decode. A Patcher must then be Reset.
func Patched[T any](v *T, path string, value any, remove bool, p *Patcher) (out *T, ok bool) {
	out = v
	if !p.owns(unsafe.Pointer(v)) {
		out = new(T)
		*out = *v
		p.own(reflect.ValueOf(out))
	}
	if !patch(reflect.ValueOf(out).Elem(), strings.Split(path, "."), value, remove, p) {
		return nil, false
	}
	return out, true
}

// A Patcher lets Patched apply the leaves of one change (a batch) at the
// cost of the change: a container is copied once per batch, not once per
// leaf, and a large map that the last batch copied is copied again ahead of
// the next batch (Commit), on another goroutine, so that the next change to
// it finds its copy made. A nil *Patcher copies every container on every
// call. A Patcher is not safe for concurrent use; Reset waits for the
// copies it started.
type Patcher struct {
	owned  []unsafe.Pointer          // containers copied in this batch, while few
	ownedM map[unsafe.Pointer]bool   // containers copied in this batch, once many
	made   []reflect.Value           // large maps copied in this batch
	spares map[unsafe.Pointer]*spare // copies of the last batch's large maps
}

// spare is a copy of map src, made on another goroutine: dst is set once
// done is closed.
type spare struct {
	src, dst reflect.Value
	done     chan struct{}
}

// SpareLen is the length from which Commit copies a map ahead. Below it a
// copy costs less than keeping one.
const SpareLen = 256

// Commit ends a batch whose value is now in use and will not be modified
// again: it starts copying the large maps the batch copied, ready for the
// next batch. Spares of maps the batch did not touch are kept: the value
// still holds those maps.
func (p *Patcher) Commit() {
	if p == nil {
		return
	}
	p.owned, p.ownedM = nil, nil
	for _, m := range p.made {
		if p.spares == nil {
			p.spares = make(map[unsafe.Pointer]*spare, len(p.made))
		}
		s := &spare{src: m, done: make(chan struct{})}
		go func() {
			defer close(s.done)
			s.dst = cloneMap(s.src)
		}()
		p.spares[m.UnsafePointer()] = s
	}
	p.made = nil
}

// Reset drops the batch and the spares, once the copies under way are
// done: the batch's value is not used, or the next batch does not start
// from it.
func (p *Patcher) Reset() {
	if p == nil {
		return
	}
	p.wait()
	p.owned, p.ownedM, p.made = nil, nil, nil
}

// wait drops the spares once their copies are done.
func (p *Patcher) wait() {
	for _, s := range p.spares {
		<-s.done
	}
	p.spares = nil
}

func (p *Patcher) owns(ptr unsafe.Pointer) bool {
	return p != nil && (p.ownedM[ptr] || slices.Contains(p.owned, ptr))
}

// own records a container copied in this batch.
func (p *Patcher) own(c reflect.Value) {
	if p == nil {
		return
	}
	if p.ownedM == nil && len(p.owned) < 16 {
		p.owned = append(p.owned, c.UnsafePointer())
		return
	}
	if p.ownedM == nil {
		p.ownedM = make(map[unsafe.Pointer]bool)
		for _, o := range p.owned {
			p.ownedM[o] = true
		}
		p.owned = nil
	}
	p.ownedM[c.UnsafePointer()] = true
}

// mapToModify returns m itself when the batch copied it, else a copy of m:
// the spare made ahead for it, or a new one.
func (p *Patcher) mapToModify(m reflect.Value) reflect.Value {
	if p.owns(m.UnsafePointer()) {
		return m
	}
	var nm reflect.Value
	if p != nil && !m.IsNil() {
		if s, ok := p.spares[m.UnsafePointer()]; ok && s.src.Type() == m.Type() {
			<-s.done
			nm = s.dst
			delete(p.spares, m.UnsafePointer())
		}
	}
	switch {
	case nm.IsValid():
	case m.IsNil():
		nm = reflect.MakeMap(m.Type())
	default:
		nm = cloneMap(m)
	}
	p.own(nm)
	if p != nil && nm.Len() >= SpareLen {
		p.made = append(p.made, nm)
	}
	return nm
}

// patch sets the leaf at segs under sv, an addressable struct, copying the
// containers on the way.
func patch(sv reflect.Value, segs []string, value any, remove bool, p *Patcher) bool {
	if sv.Kind() != reflect.Struct || isMapper(sv.Type()) {
		return false
	}
	var f *Field
	for _, g := range Fields(sv.Type()) {
		if g.Key == segs[0] {
			f = &g
			break
		}
	}
	if f == nil || f.ViaPointer {
		return false
	}
	fv := sv.FieldByIndex(f.Index)
	if len(segs) == 1 {
		return setLeaf(fv, value, remove)
	}
	if m, ok := mapperValue(fv); ok {
		return patchMapper(fv, m, segs[1:], value, remove, p)
	}
	switch fv.Kind() {
	case reflect.Struct:
		if reflect.PointerTo(fv.Type()).Implements(textUnmarshalerType) {
			return false
		}
		return patch(fv, segs[1:], value, remove, p)
	case reflect.Pointer:
		et := fv.Type().Elem()
		if et.Kind() != reflect.Struct || (fv.IsNil() && remove) {
			return false
		}
		np := fv
		if fv.IsNil() || !p.owns(fv.UnsafePointer()) {
			np = reflect.New(et)
			if !fv.IsNil() {
				np.Elem().Set(fv.Elem())
			}
			p.own(np)
		}
		if !patch(np.Elem(), segs[1:], value, remove, p) {
			return false
		}
		fv.Set(np)
		return true
	case reflect.Map:
		if fv.Type().Key().Kind() != reflect.String {
			return false
		}
		nm := p.mapToModify(fv)
		key := reflect.ValueOf(segs[1]).Convert(fv.Type().Key())
		et := fv.Type().Elem()
		if len(segs) == 2 {
			if remove {
				nm.SetMapIndex(key, reflect.Value{})
			} else {
				ne := reflect.New(et).Elem()
				if !setLeaf(ne, value, false) {
					return false
				}
				nm.SetMapIndex(key, ne)
			}
			fv.Set(nm)
			return true
		}
		ne := reflect.New(et).Elem()
		if old := fv.MapIndex(key); old.IsValid() {
			ne.Set(old)
		} else if remove {
			return false
		}
		ne, ok := patchEntry(ne, segs[2:], value, remove, p)
		if !ok {
			return false
		}
		nm.SetMapIndex(key, ne)
		fv.Set(nm)
		return true
	}
	return false
}

// patchEntry sets the leaf at segs under ne, a copy of a map's value (a
// struct, or a pointer to one, whose target is copied unless the batch
// copied it), and returns the value to put back in the map.
func patchEntry(ne reflect.Value, segs []string, value any, remove bool, p *Patcher) (reflect.Value, bool) {
	et := ne.Type()
	switch {
	case et.Kind() == reflect.Struct:
		return ne, patch(ne, segs, value, remove, p)
	case et.Kind() == reflect.Pointer && et.Elem().Kind() == reflect.Struct:
		np := ne
		if ne.IsNil() || !p.owns(ne.UnsafePointer()) {
			np = reflect.New(et.Elem())
			if !ne.IsNil() {
				np.Elem().Set(ne.Elem())
			}
			p.own(np)
		}
		return np, patch(np.Elem(), segs, value, remove, p)
	}
	return reflect.Value{}, false
}

// patchMapper sets the leaf at segs (a key of m, and the path beneath its
// value, if any) in fv, which holds m: as the reflect.Map case of patch
// does, with one MapperWith or MapperWithout in place of the map's copy. A
// Mapper is never modified, so the Patcher keeps no copy of one.
func patchMapper(fv reflect.Value, m Mapper, segs []string, value any, remove bool, p *Patcher) bool {
	key := segs[0]
	var nm Mapper
	switch {
	case len(segs) == 1 && remove:
		nm = m.MapperWithout(key)
	case len(segs) == 1:
		ne := reflect.New(m.MapperElem()).Elem()
		if !setLeaf(ne, value, false) {
			return false
		}
		nm = m.MapperWith(MapperEntry(key, ne))
	default:
		ne := reflect.New(m.MapperElem()).Elem()
		if old, ok := m.MapperGet(key); ok {
			ne.Set(old)
		} else if remove {
			return false
		}
		ne, ok := patchEntry(ne, segs[1:], value, remove, p)
		if !ok {
			return false
		}
		nm = m.MapperWith(MapperEntry(key, ne))
	}
	return setMapper(fv, nm) == nil
}

// setLeaf decodes value into dst, a scalar, or resets it.
func setLeaf(dst reflect.Value, value any, remove bool) bool {
	t := dst.Type()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	scalar := t == durationType || reflect.PointerTo(t).Implements(textUnmarshalerType)
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Float32, reflect.Float64:
		scalar = true
	}
	if !scalar {
		return false
	}
	nv := reflect.New(dst.Type()).Elem()
	if !remove && DecodeLeaf(value, nv) != nil {
		return false
	}
	dst.Set(nv)
	return true
}

// cloneMap copies map m: with maps.Clone for the common element types (a
// reflect copy costs several times more), else entry by entry.
func cloneMap(m reflect.Value) reflect.Value {
	t := m.Type()
	for _, n := range nativeMaps {
		if t.Key() == n.t.Key() && t.Elem() == n.t.Elem() {
			c := reflect.ValueOf(n.clone(m.Convert(n.t).Interface())).Convert(t)
			return c
		}
	}
	out := reflect.MakeMapWithSize(t, m.Len()+1)
	k, v := reflect.New(t.Key()).Elem(), reflect.New(t.Elem()).Elem()
	for it := m.MapRange(); it.Next(); {
		k.SetIterKey(it)
		v.SetIterValue(it)
		out.SetMapIndex(k, v)
	}
	return out
}

// nativeMaps are the map types cloneMap copies natively.
var nativeMaps = []struct {
	t     reflect.Type
	clone func(any) any
}{
	nativeMap[string](), nativeMap[int](), nativeMap[int64](), nativeMap[bool](), nativeMap[float64](),
	nativeMap[any](), nativeMap[time.Duration](), nativeMap[uint](), nativeMap[int32](),
}

func nativeMap[V any]() struct {
	t     reflect.Type
	clone func(any) any
} {
	return struct {
		t     reflect.Type
		clone func(any) any
	}{reflect.TypeFor[map[string]V](), func(m any) any { return maps.Clone(m.(map[string]V)) }}
}
