module github.com/hotmod/hotmod/examples

go 1.22

require github.com/hotmod/hotmod/sdk v0.0.0

require github.com/expr-lang/expr v1.17.8

replace github.com/hotmod/hotmod/sdk => ../sdk
