package format

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestValue(t *testing.T) {
	type point struct{ X int }
	cases := []struct {
		in   any
		want any
		err  string
	}{
		{nil, nil, ""},
		{int8(-3), int64(-3), ""},
		{uint32(7), int64(7), ""},
		{float32(0.5), 0.5, ""},
		{[]int{1, 2}, []any{int64(1), int64(2)}, ""},
		{[2]string{"a", "b"}, []any{"a", "b"}, ""},
		{map[string][]uint8{"raw": []byte("x")}, map[string]any{"raw": []byte("x")}, ""},
		{map[string]any{"at": time.Date(2024, 3, 1, 12, 0, 0, 5, time.UTC), "for": 90 * time.Minute},
			map[string]any{"at": "2024-03-01T12:00:00.000000005Z", "for": "1h30m0s"}, ""},
		{&point{X: 1}, nil, "result is a format.point, which has no value-model form: return a number, string, bool, list or map"},
		{map[string]any{"list": []any{1, point{}}}, nil, "result.list[1] is a format.point, which has no value-model form: return a number, string, bool, list or map"},
		{map[int]string{1: "a"}, nil, "result is a map[int]string: maps in a result need string keys"},
		{uint64(math.MaxUint64), nil, "result is 18446744073709551615, beyond the largest integer the value model holds (int64)"},
		{[]float64{math.NaN()}, nil, "result[0] is NaN, which JSON cannot carry (a division by zero?)"},
	}
	for _, c := range cases {
		got, err := Value(c.in)
		if c.err != "" {
			if err == nil || err.Error() != c.err {
				t.Errorf("Value(%#v) = %#v, %v; want the error %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Value(%#v) = %#v, %v; want %#v", c.in, got, err, c.want)
		}
	}
	deep := any(int64(1))
	for i := 0; i < 200; i++ {
		deep = []any{deep}
	}
	if _, err := Value(deep); err == nil {
		t.Errorf("a value nested 200 deep was accepted")
	}
}
