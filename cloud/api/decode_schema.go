package api

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// schemaChecker walks a decoded JSON document (maps, lists, json.Number, strings,
// bools, nil) beside the Go type it will be unmarshalled into, to do what encoding/json
// does not: name the field at fault with its list indices
// ("spec.containers[0].ports[1].containerPort: expected an integer") and collect every
// unknown field instead of stopping at the first or ignoring them all. It accepts and
// refuses exactly what encoding/json does, so that an unmarshal after a clean check
// cannot fail.
type schemaChecker struct {
	errs FieldErrors
	// issues are the keys that do not name a field exactly: unknown ones, and ones
	// matched regardless of case.
	issues []fieldIssue
}

// maxSchemaErrors bounds the errors reported for one document: past a few, more say
// nothing new (a list written as a map fails on every element).
const maxSchemaErrors = 20

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

func (c *schemaChecker) fail(path, reason string) {
	if len(c.errs) < maxSchemaErrors {
		if path == "" {
			reason = "the document: " + reason
		}
		c.errs.add(path, reason)
	}
}

func (c *schemaChecker) check(path string, v any, t reflect.Type) {
	if len(c.errs) >= maxSchemaErrors {
		return
	}
	if v == nil {
		// encoding/json sets pointers, maps, slices and interfaces to nil and leaves
		// other values alone, except that it hands "null" to a non-pointer value's
		// UnmarshalJSON.
		if t.Kind() != reflect.Pointer && reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
			c.unmarshaler(path, v, t)
		}
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		c.unmarshaler(path, v, t)
		return
	}
	switch t.Kind() {
	case reflect.Interface:
		// Only `any` fields occur (kept-but-unused parts such as affinity): anything goes.
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "expected an object")
			return
		}
		fields := structFields(t)
		for _, k := range slices.Sorted(maps.Keys(m)) {
			f, exact := fields.lookup(k)
			if f == nil {
				c.issues = append(c.issues, fieldIssue{path: child(path, k), known: fields.nearest(k)})
				continue
			}
			if !exact {
				c.issues = append(c.issues, fieldIssue{path: child(path, k), known: f.name, folded: true})
			}
			c.check(child(path, k), m[k], f.typ)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "expected an object")
			return
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			c.check(key(path, k), m[k], t.Elem())
		}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			c.checkBytes(path, v)
			return
		}
		l, ok := v.([]any)
		if !ok {
			c.fail(path, "expected a list")
			return
		}
		if t.Kind() == reflect.Array && len(l) > t.Len() {
			l = l[:t.Len()]
		}
		for i, e := range l {
			c.check(index(path, i), e, t.Elem())
		}
	case reflect.String:
		switch v.(type) {
		case string:
		case bool:
			c.fail(path, "expected a string; quote the value (YAML reads yes, no, on, off, y and n as booleans)")
		case json.Number:
			c.fail(path, "expected a string; quote the value")
		default:
			c.fail(path, "expected a string")
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			c.fail(path, "expected a boolean (true or false)")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "expected an integer")
			return
		}
		if _, err := strconv.ParseInt(string(n), 10, t.Bits()); err != nil {
			c.failNumber(path, n, err, "an integer", t.Bits())
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "expected a non-negative integer")
			return
		}
		if _, err := strconv.ParseUint(string(n), 10, t.Bits()); err != nil {
			c.failNumber(path, n, err, "a non-negative integer", t.Bits())
		}
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "expected a number")
			return
		}
		if _, err := strconv.ParseFloat(string(n), t.Bits()); err != nil {
			c.failNumber(path, n, err, "a number", t.Bits())
		}
	default:
		c.fail(path, "cannot be decoded into "+t.String())
	}
}

func (c *schemaChecker) failNumber(path string, n json.Number, err error, want string, bits int) {
	if errors.Is(err, strconv.ErrRange) {
		c.fail(path, n.String()+" is out of range for a "+strconv.Itoa(bits)+"-bit value")
		return
	}
	c.fail(path, "expected "+want+", found "+n.String())
}

func (c *schemaChecker) checkBytes(path string, v any) {
	if _, ok := v.(string); !ok {
		c.fail(path, "expected a base64 string")
	}
	// The content is checked by json.Unmarshal; no field of the API is []byte yet.
}

// unmarshaler runs the type's own UnmarshalJSON (Quantity, Time, IntOrString) on v.
func (c *schemaChecker) unmarshaler(path string, v any, t reflect.Type) {
	data, err := json.Marshal(v)
	if err != nil {
		c.fail(path, err.Error())
		return
	}
	u := reflect.New(t).Interface().(json.Unmarshaler)
	if err := u.UnmarshalJSON(data); err != nil {
		var fe *FieldError
		if errors.As(err, &fe) && fe.Field == "" {
			c.fail(path, fe.Reason)
			return
		}
		c.fail(path, err.Error())
	}
}

type structField struct {
	name string
	typ  reflect.Type
}

type fieldTable struct {
	byName map[string]*structField
	all    []*structField
}

// lookup finds the field encoding/json would fill from key: an exact name first, then
// one equal under case folding. exact tells which.
func (ft *fieldTable) lookup(key string) (f *structField, exact bool) {
	if f := ft.byName[key]; f != nil {
		return f, true
	}
	for _, f := range ft.all {
		if strings.EqualFold(f.name, key) {
			return f, false
		}
	}
	return nil, false
}

var fieldTables sync.Map // reflect.Type -> *fieldTable

// structFields lists the JSON fields of struct type t as encoding/json sees them:
// exported fields by tag name or field name, "-" skipped, and the fields of embedded
// structs without a tag name promoted, shallower fields winning.
func structFields(t reflect.Type) *fieldTable {
	if ft, ok := fieldTables.Load(t); ok {
		return ft.(*fieldTable)
	}
	ft := &fieldTable{byName: map[string]*structField{}}
	collectFields(ft, t, 0, map[string]int{})
	for _, f := range ft.byName {
		ft.all = append(ft.all, f)
	}
	sort.Slice(ft.all, func(i, j int) bool { return ft.all[i].name < ft.all[j].name })
	fieldTables.Store(t, ft)
	return ft
}

func collectFields(ft *fieldTable, t reflect.Type, depth int, depthOf map[string]int) {
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if sf.Anonymous && name == "" {
			et := sf.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				collectFields(ft, et, depth+1, depthOf)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		if d, seen := depthOf[name]; seen && d <= depth {
			continue
		}
		depthOf[name] = depth
		ft.byName[name] = &structField{name: name, typ: sf.Type}
	}
}
