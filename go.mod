module github.com/rtkit/rtkit

go 1.25
