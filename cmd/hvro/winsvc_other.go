//go:build !windows

package main

import (
	"errors"
	"fmt"
	"io"
)

var errServiceNotWindows = errors.New("hvro service is for Windows; on Linux use deploy/systemd")

func serviceAction(sa serviceArgs, stdout, stderr io.Writer) int {
	fmt.Fprintf(stderr, "hvro service %s: %v\n", sa.action, errServiceNotWindows)
	return 2
}
