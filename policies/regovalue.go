package policies

import (
	"bytes"
	"cmp"
	"encoding"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// regoValue converts v to the Rego value that its JSON encoding decodes to
// (encoding/json's names, omitempty and omitzero, embedded structs
// flattened), without encoding it: a policy call used to encode its input,
// decode it into maps and have OPA copy and convert those again. A value of
// a type with its own JSON or text encoding other than time.Time, a float, a
// []byte, a map not keyed by strings or a field with the `string` option
// goes through JSON (none is in an Input today). As encoding/json does, it
// works out how to convert a type once and keeps that.
func regoValue(v reflect.Value) (ast.Value, error) {
	if !v.IsValid() {
		return ast.NullValue, nil
	}
	return converterFor(v.Type())(v)
}

// converter converts a value of one type to a Rego value.
type converter func(reflect.Value) (ast.Value, error)

var converters sync.Map // reflect.Type → converter

// converterFor returns t's converter, made once. A recursive type's
// converter waits, where it meets itself, until it is made (as
// encoding/json's typeEncoder does).
func converterFor(t reflect.Type) converter {
	if c, ok := converters.Load(t); ok {
		return c.(converter)
	}
	var (
		wg sync.WaitGroup
		c  converter
	)
	wg.Add(1)
	if c, loaded := converters.LoadOrStore(t, converter(func(v reflect.Value) (ast.Value, error) {
		wg.Wait()
		return c(v)
	})); loaded {
		return c.(converter)
	}
	c = newConverter(t)
	wg.Done()
	converters.Store(t, c)
	return c
}

func newConverter(t reflect.Type) converter {
	if t == timeType {
		return func(v reflect.Value) (ast.Value, error) {
			if !v.CanInterface() {
				return regoValueViaJSON(v)
			}
			return ast.String(v.Interface().(time.Time).Format(time.RFC3339Nano)), nil
		}
	}
	if ownEncoding(t) {
		return regoValueViaJSON
	}
	switch t.Kind() {
	case reflect.Pointer:
		elem := converterFor(t.Elem())
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			return elem(v.Elem())
		}
	case reflect.Interface:
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			return regoValue(v.Elem())
		}
	case reflect.String:
		return func(v reflect.Value) (ast.Value, error) { return ast.String(v.String()), nil }
	case reflect.Bool:
		return func(v reflect.Value) (ast.Value, error) { return ast.Boolean(v.Bool()), nil }
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return func(v reflect.Value) (ast.Value, error) { return ast.Number(strconv.FormatInt(v.Int(), 10)), nil }
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return func(v reflect.Value) (ast.Value, error) { return ast.Number(strconv.FormatUint(v.Uint(), 10)), nil }
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return regoValueViaJSON // base64
		}
		elem := converterFor(t.Elem())
		return func(v reflect.Value) (ast.Value, error) {
			if v.Kind() == reflect.Slice && v.IsNil() {
				return ast.NullValue, nil
			}
			terms := make([]*ast.Term, v.Len())
			for i := range terms {
				e, err := elem(v.Index(i))
				if err != nil {
					return nil, err
				}
				terms[i] = ast.NewTerm(e)
			}
			return ast.NewArray(terms...), nil
		}
	case reflect.Map:
		if t.Key().Kind() != reflect.String || ownEncoding(t.Key()) {
			return regoValueViaJSON
		}
		elem := converterFor(t.Elem())
		return func(v reflect.Value) (ast.Value, error) {
			if v.IsNil() {
				return ast.NullValue, nil
			}
			items := make([][2]*ast.Term, 0, v.Len())
			for it := v.MapRange(); it.Next(); {
				e, err := elem(it.Value())
				if err != nil {
					return nil, err
				}
				items = append(items, ast.Item(ast.StringTerm(it.Key().String()), ast.NewTerm(e)))
			}
			return ast.NewObject(items...), nil
		}
	case reflect.Struct:
		return structConverter(t)
	}
	return regoValueViaJSON
}

func structConverter(t reflect.Type) converter {
	fields, err := jsonFields(t)
	if err != nil {
		return regoValueViaJSON
	}
	type member struct {
		jsonField
		key  *ast.Term
		conv converter
	}
	members := make([]member, len(fields))
	for i, f := range fields {
		members[i] = member{jsonField: f, key: ast.StringTerm(f.name), conv: converterFor(t.FieldByIndex(f.index).Type)}
	}
	return func(v reflect.Value) (ast.Value, error) {
		items := make([][2]*ast.Term, 0, len(members))
		for _, m := range members {
			fv, err := v.FieldByIndexErr(m.index)
			if err != nil {
				continue // behind a nil embedded pointer: encoding/json leaves it out
			}
			if (m.omitEmpty && isEmpty(fv)) || (m.omitZero && isZero(fv)) {
				continue
			}
			e, err := m.conv(fv)
			if err != nil {
				return nil, err
			}
			items = append(items, [2]*ast.Term{m.key, ast.NewTerm(e)})
		}
		return ast.NewObject(items...), nil
	}
}

// regoValueViaJSON is the slow way: encode v, decode it into a Rego value.
func regoValueViaJSON(v reflect.Value) (ast.Value, error) {
	if !v.CanInterface() {
		return nil, fmt.Errorf("convert %s to a Rego value: reached through an unexported field", v.Type())
	}
	raw, err := json.Marshal(v.Interface())
	if err != nil {
		return nil, err
	}
	return ast.ValueFromReader(bytes.NewReader(raw))
}

var (
	timeType       = reflect.TypeFor[time.Time]()
	marshalerTypes = []reflect.Type{reflect.TypeFor[json.Marshaler](), reflect.TypeFor[encoding.TextMarshaler]()}
)

// ownEncoding says whether t (or *t) has a JSON or text encoding of its own.
func ownEncoding(t reflect.Type) bool {
	for _, m := range marshalerTypes {
		if t.Implements(m) || reflect.PointerTo(t).Implements(m) {
			return true
		}
	}
	return false
}

// isEmpty is encoding/json's omitempty test.
func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Array, reflect.Map, reflect.Slice, reflect.String:
		return v.Len() == 0
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Interface, reflect.Pointer:
		return v.IsZero()
	}
	return false
}

type isZeroer interface{ IsZero() bool }

var isZeroerType = reflect.TypeFor[isZeroer]()

// isZero is encoding/json's omitzero test: the IsZero method if there is
// one, else the zero value.
func isZero(v reflect.Value) bool {
	t := v.Type()
	switch {
	case !v.CanInterface():
	case t.Implements(isZeroerType):
		if (v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface) && v.IsNil() {
			return true
		}
		return v.Interface().(isZeroer).IsZero()
	case reflect.PointerTo(t).Implements(isZeroerType):
		p := reflect.New(t)
		p.Elem().Set(v)
		return p.Interface().(isZeroer).IsZero()
	}
	return v.IsZero()
}

// jsonField is one JSON object member of a struct.
type jsonField struct {
	name                string
	index               []int
	omitEmpty, omitZero bool
}

// jsonFields lists t's JSON members as encoding/json names them: embedded
// structs without a name in their tag are flattened, and of several fields
// with one name the shallowest wins (a tagged one among equals; none if
// still tied). It returns an error for what it does not convert itself
// (the `string` option).
func jsonFields(t reflect.Type) ([]jsonField, error) {
	type candidate struct {
		jsonField
		depth  int
		tagged bool
	}
	var all []candidate
	type level struct {
		t     reflect.Type
		index []int
	}
	queue := []level{{t: t}}
	for depth := 0; len(queue) > 0; depth++ {
		var next []level
		for _, l := range queue {
			for i := range l.t.NumField() {
				sf := l.t.Field(i)
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, opts, _ := strings.Cut(tag, ",")
				index := append(slices.Clone(l.index), i)
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if sf.Anonymous && name == "" && ft.Kind() == reflect.Struct {
					next = append(next, level{t: ft, index: index})
					continue
				}
				if !sf.IsExported() {
					continue
				}
				f := candidate{jsonField: jsonField{name: cmp.Or(name, sf.Name), index: index}, depth: depth, tagged: name != ""}
				for o := range strings.SplitSeq(opts, ",") {
					switch o {
					case "omitempty":
						f.omitEmpty = true
					case "omitzero":
						f.omitZero = true
					case "string":
						return nil, fmt.Errorf("field %s of %s: the string option", sf.Name, t)
					}
				}
				all = append(all, f)
			}
		}
		queue = next
	}
	// Of the fields of one name, the shallowest wins, a tagged one among
	// the shallowest; if that leaves more than one, none does. all is in
	// breadth-first order: the first field of a name is a shallowest one.
	type pick struct {
		i    int
		tied bool
	}
	winner := map[string]*pick{}
	for i, f := range all {
		p, ok := winner[f.name]
		if !ok {
			winner[f.name] = &pick{i: i}
			continue
		}
		w := all[p.i]
		switch {
		case f.depth > w.depth:
		case f.tagged && !w.tagged:
			p.i, p.tied = i, false
		case f.tagged == w.tagged:
			p.tied = true
		}
	}
	var out []jsonField
	for i, f := range all {
		if p := winner[f.name]; p.i == i && !p.tied {
			out = append(out, f.jsonField)
		}
	}
	slices.SortFunc(out, func(a, b jsonField) int { return slices.Compare(a.index, b.index) })
	return out, nil
}
