package main

import "reflect"

// fields counts the fields of logic.Result in this build.
func fields(v any) int { return reflect.TypeOf(v).NumField() }
