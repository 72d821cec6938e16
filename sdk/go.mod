module github.com/hotmod/hotmod/sdk

go 1.22
