package api

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
)

// Quantity is a resource amount as Kubernetes writes it: "500m" CPU, "128Mi" memory,
// "2" cores. It keeps the text it was given and compares by value in thousandths, which
// is exact for every suffix cloudbox accepts.
type Quantity struct {
	s     string
	milli int64
}

var quantitySuffixes = map[string]*big.Int{
	"":   big.NewInt(1),
	"k":  big.NewInt(1e3),
	"M":  big.NewInt(1e6),
	"G":  big.NewInt(1e9),
	"T":  big.NewInt(1e12),
	"P":  big.NewInt(1e15),
	"E":  big.NewInt(1e18),
	"Ki": big.NewInt(1 << 10),
	"Mi": big.NewInt(1 << 20),
	"Gi": big.NewInt(1 << 30),
	"Ti": big.NewInt(1 << 40),
	"Pi": big.NewInt(1 << 50),
	"Ei": new(big.Int).Lsh(big.NewInt(1), 60),
}

const maxQuantityLen = 64

// ParseQuantity parses "100m", "1.5", "64Mi", "1e3" and the like.
func ParseQuantity(s string) (Quantity, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return Quantity{}, fmt.Errorf("quantity is empty")
	}
	// The longest sensible quantity ("9223372036854775807m", "0.000000001Ei") is far
	// shorter; a cap keeps big-number parsing of a hostile string cheap.
	if len(in) > maxQuantityLen {
		return Quantity{}, fmt.Errorf("quantity %.20q... is longer than %d characters", in, maxQuantityLen)
	}
	num, suffix := splitQuantity(in)
	if num == "" {
		return Quantity{}, fmt.Errorf("quantity %q has no number", s)
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return Quantity{}, fmt.Errorf("quantity %q: %q is not a number", s, num)
	}
	if r.Sign() < 0 {
		return Quantity{}, fmt.Errorf("quantity %q must not be negative", s)
	}
	switch {
	case suffix == "m":
		// milli: the number is already in thousandths.
	case isExponent(suffix):
		exp, err := strconv.Atoi(suffix[1:])
		if err != nil || exp < -3 || exp > 18 {
			return Quantity{}, fmt.Errorf("quantity %q: bad exponent %q", s, suffix)
		}
		r.Mul(r, new(big.Rat).SetFrac(pow10(exp+3), big.NewInt(1)))
	default:
		mult, ok := quantitySuffixes[suffix]
		if !ok {
			return Quantity{}, fmt.Errorf("quantity %q: unknown suffix %q (use m, k, M, G, Ki, Mi, Gi, ...)", s, suffix)
		}
		r.Mul(r, new(big.Rat).SetInt(new(big.Int).Mul(mult, big.NewInt(1000))))
	}
	// Round up: a request of 0.0001 cores still asks for something.
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if new(big.Rat).SetInt(n).Cmp(r) < 0 {
		n.Add(n, big.NewInt(1))
	}
	if !n.IsInt64() {
		return Quantity{}, fmt.Errorf("quantity %q is too large", s)
	}
	return Quantity{s: in, milli: n.Int64()}, nil
}

// isExponent tells a decimal exponent ("e3", "E-2") from a suffix that starts with E
// ("E", "Ei": exa and exbi).
func isExponent(suffix string) bool {
	if len(suffix) < 2 || suffix[0] != 'e' && suffix[0] != 'E' {
		return false
	}
	_, err := strconv.Atoi(suffix[1:])
	return err == nil
}

func pow10(e int) *big.Int {
	if e < 0 {
		return big.NewInt(1)
	}
	return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(e)), nil)
}

func splitQuantity(s string) (num, suffix string) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.' || s[i] == '+' || (s[i] == '-' && i == 0)) {
		i++
	}
	return s[:i], s[i:]
}

// MustParseQuantity parses s and panics on error; for constants in code and tests.
func MustParseQuantity(s string) Quantity {
	q, err := ParseQuantity(s)
	if err != nil {
		panic(err)
	}
	return q
}

// NewMilliQuantity returns a quantity of m thousandths, written as "Nm" or "N".
func NewMilliQuantity(m int64) Quantity {
	if m%1000 == 0 {
		return Quantity{s: strconv.FormatInt(m/1000, 10), milli: m}
	}
	return Quantity{s: strconv.FormatInt(m, 10) + "m", milli: m}
}

// NewQuantity returns a quantity of n whole units (bytes, cores, pods).
func NewQuantity(n int64) Quantity {
	if n > math.MaxInt64/1000 {
		n = math.MaxInt64 / 1000
	}
	return Quantity{s: strconv.FormatInt(n, 10), milli: n * 1000}
}

// NewBinaryQuantity returns n bytes written with the largest exact binary suffix.
func NewBinaryQuantity(n int64) Quantity {
	q := NewQuantity(n)
	for _, suf := range []string{"Ei", "Pi", "Ti", "Gi", "Mi", "Ki"} {
		m := quantitySuffixes[suf].Int64()
		if n >= m && n%m == 0 {
			q.s = strconv.FormatInt(n/m, 10) + suf
			break
		}
	}
	return q
}

// MilliValue is the quantity in thousandths (millicores for CPU).
func (q Quantity) MilliValue() int64 { return q.milli }

// Value is the quantity rounded up to whole units (bytes for memory).
func (q Quantity) Value() int64 { return (q.milli + 999) / 1000 }

// IsZero reports whether the quantity is zero.
func (q Quantity) IsZero() bool { return q.milli == 0 }

// Cmp compares q with o: -1, 0 or 1.
func (q Quantity) Cmp(o Quantity) int {
	switch {
	case q.milli < o.milli:
		return -1
	case q.milli > o.milli:
		return 1
	}
	return 0
}

// Add returns q+o, written in the simplest form that is exact.
func (q Quantity) Add(o Quantity) Quantity {
	if q.s == "" {
		return o
	}
	return NewMilliQuantity(q.milli + o.milli)
}

// Sub returns q-o (which may be negative, for free-capacity arithmetic).
func (q Quantity) Sub(o Quantity) Quantity { return NewMilliQuantity(q.milli - o.milli) }

// String returns the quantity as it was written.
func (q Quantity) String() string {
	if q.s == "" {
		return "0"
	}
	return q.s
}

// MarshalJSON writes the quantity as a string.
func (q Quantity) MarshalJSON() ([]byte, error) { return json.Marshal(q.String()) }

// UnmarshalJSON accepts a string ("500m") or a bare number (2).
func (q *Quantity) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	p, err := ParseQuantity(s)
	if err != nil {
		return err
	}
	*q = p
	return nil
}

// IntOrString is a port or percentage that may be written as a number or a name
// ("8080" or "http"; "25%").
type IntOrString struct {
	IntVal int32
	StrVal string
	IsStr  bool
}

// FromInt returns an IntOrString holding n.
func FromInt(n int32) IntOrString { return IntOrString{IntVal: n} }

// FromString returns an IntOrString holding s.
func FromString(s string) IntOrString { return IntOrString{StrVal: s, IsStr: true} }

// String returns the value as text.
func (v IntOrString) String() string {
	if v.IsStr {
		return v.StrVal
	}
	return strconv.Itoa(int(v.IntVal))
}

// MarshalJSON writes a number or a string.
func (v IntOrString) MarshalJSON() ([]byte, error) {
	if v.IsStr {
		return json.Marshal(v.StrVal)
	}
	return json.Marshal(v.IntVal)
}

// UnmarshalJSON reads a number or a string.
func (v *IntOrString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		v.IsStr = true
		v.IntVal = 0
		return json.Unmarshal(b, &v.StrVal)
	}
	v.IsStr = false
	v.StrVal = ""
	return json.Unmarshal(b, &v.IntVal)
}
