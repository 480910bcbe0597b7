package api

import "reflect"

// DeepCopy returns a copy of obj that shares no memory with it, of the same Go type,
// so a caller may change the copy of an object it got from a cache. nil gives nil.
//
// It copies by reflection rather than through JSON: a JSON round trip has an error
// path that a copy should not have (a negative Quantity from Sub does not decode) and
// would turn empty lists into nil ones, which reflect.DeepEqual then tells apart.
func DeepCopy(obj Object) Object {
	if obj == nil {
		return nil
	}
	v := reflect.ValueOf(obj)
	out := reflect.New(v.Type()).Elem()
	deepCopyValue(out, v)
	return out.Interface().(Object)
}

// deepCopyValue sets dst, which is settable and of src's type, to a deep copy of src.
// Values hold no cycles (API objects are trees), and unexported fields are copied as
// they are: the types that have them (Quantity, Time) are immutable values.
// DeepCopyOf is DeepCopy with obj's own type, for callers that hold a *Pod and not
// an Object.
func DeepCopyOf[T Object](obj T) T { return DeepCopy(obj).(T) }

func deepCopyValue(dst, src reflect.Value) {
	switch src.Kind() {
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		deepCopyValue(p.Elem(), src.Elem())
		dst.Set(p)
	case reflect.Interface:
		if src.IsNil() {
			return
		}
		e := reflect.New(src.Elem().Type()).Elem()
		deepCopyValue(e, src.Elem())
		dst.Set(e)
	case reflect.Struct:
		dst.Set(src)
		for i := 0; i < src.NumField(); i++ {
			if dst.Field(i).CanSet() {
				deepCopyValue(dst.Field(i), src.Field(i))
			}
		}
	case reflect.Slice:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		s := reflect.MakeSlice(src.Type(), src.Len(), src.Len())
		for i := 0; i < src.Len(); i++ {
			deepCopyValue(s.Index(i), src.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		if src.IsNil() {
			dst.SetZero()
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		it := src.MapRange()
		for it.Next() {
			e := reflect.New(src.Type().Elem()).Elem()
			deepCopyValue(e, it.Value())
			m.SetMapIndex(it.Key(), e)
		}
		dst.Set(m)
	default:
		dst.Set(src)
	}
}
