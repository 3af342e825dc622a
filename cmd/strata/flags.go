package main

import (
	"errors"
	"strconv"
)

// natural is an integer flag that refuses negative numbers: a negative
// --expect-version or history -n is a usage error (exit 2), like any flag
// value that does not parse.
type natural[T int | int64] struct{ p *T }

func (n natural[T]) String() string {
	if n.p == nil {
		return "0"
	}
	return strconv.FormatInt(int64(*n.p), 10)
}

func (n natural[T]) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, strconv.IntSize)
	if err != nil {
		return errors.New("want a whole number")
	}
	if v < 0 {
		return errors.New("want 0 or more")
	}
	*n.p = T(v)
	return nil
}

func (n natural[T]) Type() string { return "int" }
