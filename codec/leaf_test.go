package codec_test

import (
	"errors"
	"math"
	"math/big"
	"net"
	"reflect"
	"testing"
	"time"

	"github.com/strataconf/strata/codec"
)

type Port uint16

type Window struct {
	Every time.Duration
	At    time.Time `koanf:"at"`
	Limit *int
	Hosts []string
}

func TestLeafRoundTrip(t *testing.T) {
	tests := []struct {
		v    any
		text string
	}{
		{"hello", "hello"},
		{"", ""},
		{" spaced ", " spaced "},
		{`["not", "a list"]`, `["not", "a list"]`},
		{-5, "-5"},
		{int8(-128), "-128"},
		{int16(300), "300"},
		{int32(-70000), "-70000"},
		{int64(math.MinInt64), "-9223372036854775808"},
		{uint(7), "7"},
		{uint8(255), "255"},
		{uint64(math.MaxUint64), "18446744073709551615"},
		{Port(8080), "8080"},
		{float32(0.1), "0.1"},
		{math.Pi, "3.141592653589793"},
		{1e21, "1e+21"},
		{math.Inf(-1), "-Inf"},
		{true, "true"},
		{false, "false"},
		{15 * time.Second, "15s"},
		{time.Duration(0), "0s"},
		{-90 * time.Minute, "-1h30m0s"},
		{time.Duration(math.MinInt64), "-2562047h47m16.854775808s"},
		{time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC), "2024-01-02T03:04:05.000000006Z"},
		{net.ParseIP("10.0.0.1"), "10.0.0.1"},
		{net.ParseIP("::1"), "::1"},
		{Level(1), "info"},
		{*big.NewInt(1).Lsh(big.NewInt(1), 100), "1267650600228229401496703205376"},
		{[]string{"a", "b<c>&"}, `["a","b<c>&"]`},
		{[]int{1, -2}, `[1,-2]`},
		{[]string{}, `[]`},
		{[]byte("hi"), `[104,105]`},
		{[2]bool{true, false}, `[true,false]`},
		{[]float64{0.5, math.NaN()}[:1], `[0.5]`},
		{[]float64{math.Inf(1)}, `["+Inf"]`},
		{[]uint64{math.MaxUint64}, `[18446744073709551615]`},
		{[]time.Duration{time.Second, time.Millisecond}, `["1s","1ms"]`},
		{map[string]int{"b": 2, "a": 1}, `{"a":1,"b":2}`},
		{map[int]string{2: "x", 10: "y"}, `{"10":"y","2":"x"}`},
		{map[string][]string{"k": {"v"}}, `{"k":["v"]}`},
		{Server{Host: "h", Port: 1}, `{"host":"h","port":1}`},
		{[]Server{{Host: "a"}, {Port: 2}}, `[{"host":"a","port":0},{"host":"","port":2}]`},
		{map[string]Server{"x": {Host: "h"}}, `{"x":{"host":"h","port":0}}`},
		{Window{Every: time.Minute, At: t0, Limit: ptr(3), Hosts: []string{"h"}},
			`{"at":"2024-01-02T03:04:05Z","every":"1m0s","hosts":["h"],"limit":3}`},
		{Window{}, `{"at":"0001-01-01T00:00:00Z","every":"0s"}`},
		{ptr(42), "42"},
		{ptr(ptr("deep")), "deep"},
	}
	for _, tt := range tests {
		text, err := codec.EncodeLeaf(tt.v)
		if err != nil {
			t.Errorf("EncodeLeaf(%#v): %v", tt.v, err)
			continue
		}
		if text != tt.text {
			t.Errorf("EncodeLeaf(%#v) = %q, want %q", tt.v, text, tt.text)
		}
		dst := reflect.New(reflect.TypeOf(tt.v)).Elem()
		if err := codec.DecodeLeaf(text, dst); err != nil {
			t.Errorf("DecodeLeaf(%q) into %T: %v", text, tt.v, err)
			continue
		}
		if got := dst.Interface(); !reflect.DeepEqual(got, tt.v) {
			t.Errorf("DecodeLeaf(%q) = %#v, want %#v", text, got, tt.v)
		}
	}
}

func TestLeafNaN(t *testing.T) {
	text, err := codec.EncodeLeaf(math.NaN())
	if err != nil || text != "NaN" {
		t.Fatalf("EncodeLeaf(NaN) = %q, %v", text, err)
	}
	var f float64
	if err := codec.DecodeLeaf(text, reflect.ValueOf(&f).Elem()); err != nil || !math.IsNaN(f) {
		t.Errorf("DecodeLeaf(NaN) = %v, %v", f, err)
	}
}

func TestEncodeLeafErrors(t *testing.T) {
	var np *int
	for _, v := range []any{nil, np, complex(1, 2), make(chan int), []complex64{1}, map[Server]int{{}: 1}, Level(9)} {
		if s, err := codec.EncodeLeaf(v); err == nil {
			t.Errorf("EncodeLeaf(%#v) = %q, want an error", v, s)
		}
	}
	type Node struct {
		Next *Node
	}
	n := &Node{}
	n.Next = n
	if _, err := codec.EncodeLeaf(n); err == nil {
		t.Error("EncodeLeaf of a pointer cycle: no error")
	}
}

func TestEncodeLeafNil(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{[]string(nil), "[]"},
		{map[string]int(nil), "{}"},
	}
	for _, tt := range tests {
		if got, err := codec.EncodeLeaf(tt.v); err != nil || got != tt.want {
			t.Errorf("EncodeLeaf(%#v) = %q, %v; want %q", tt.v, got, err, tt.want)
		}
	}
}

func TestDecodeLeaf(t *testing.T) {
	tests := []struct {
		name string
		v    any
		into any // pointer to the destination, pre-set
		want any // the pointee after, or nil to expect an error
		err  string
	}{
		{"int from text", "12", new(int), 12, ""},
		{"nil leaves dst", nil, ptr(5), 5, ""},
		{"int overflow", "300", new(int8), nil, "value 300 overflows int8"},
		{"negative uint", "-3", new(uint), nil, "value -3 overflows uint"},
		{"int64 overflow text", "9223372036854775808", new(int64), nil, "value 9223372036854775808 overflows int64"},
		{"float overflow int", 1e19, new(int64), nil, "value 1e+19 overflows int64"},
		{"uint64 into int", uint64(math.MaxUint64), new(int), nil, "value 18446744073709551615 overflows int"},
		{"duration from bare number text", "15", new(time.Duration), nil, `cannot parse "15" as duration: time: missing unit in duration "15"`},
		{"duration from float", 1.5, new(time.Duration), nil, "cannot convert 1.5 to duration: not an integer"},
		{"bool from number", 1, new(bool), nil, "expected bool, got int 1"},
		{"string from mapping", map[string]any{}, new(string), nil, "expected text, got mapping"},
		{"text unmarshaler from mapping", map[string]any{}, new(time.Time), nil, "expected text for time.Time, got mapping"},
		{"text unmarshaler from number", 2, new(big.Int), *big.NewInt(2), ""},
		{"text unmarshaler rejects", 2, new(Level), nil, `cannot parse "2" as codec_test.Level: unknown level "2"`},
		{"bad JSON text", "[1,", new([]int), nil, `cannot parse "[1," as a JSON array: unexpected EOF`},
		{"JSON text with trailing data", "[1] x", new([]int), nil, `cannot parse "[1] x" as a JSON array: text after the JSON value`},
		{"JSON big ints keep precision", "[9007199254740993]", new([]int64), []int64{9007199254740993}, ""},
		{"index map with a gap", map[string]any{"0": "a", "2": "b"}, new([]string), nil, "expected a sequence, got mapping"},
		{"any from JSON-typed", "x", new(any), "x", ""},
		{"stringer interface", net.ParseIP("::1"), new(interface{ String() string }), net.ParseIP("::1"), ""},
		{"stringer interface mismatch", 5, new(interface{ String() string }), nil, "int does not implement interface { String() string }"},
		{"long text is cut", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", new(int), nil,
			`cannot parse "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"... as int`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := reflect.ValueOf(tt.into).Elem()
			before := dst.Interface()
			err := codec.DecodeLeaf(tt.v, dst)
			if tt.want == nil {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				if !reflect.DeepEqual(dst.Interface(), before) {
					t.Errorf("dst changed on error to %#v", dst.Interface())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dst.Interface(); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecodeLeafNested(t *testing.T) {
	var s []Server
	err := codec.DecodeLeaf(`[{"port": "x"}, {"port": 1}, {"port": -1}]`, reflect.ValueOf(&s).Elem())
	var be *codec.BindError
	if !errors.As(err, &be) || len(be.Fields) != 2 || be.Fields[0].Path != "0.port" || be.Fields[1].Path != "2.port" {
		t.Fatalf("got %v", err)
	}
	if err := codec.DecodeLeaf("1", reflect.ValueOf(0)); err == nil {
		t.Error("DecodeLeaf into an unsettable value: no error")
	}
	if err := codec.DecodeLeaf("1", reflect.Value{}); err == nil {
		t.Error("DecodeLeaf into an invalid value: no error")
	}
}
