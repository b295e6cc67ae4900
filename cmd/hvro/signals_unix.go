//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// hangups delivers SIGHUP, which asks hvro serve to reload its configuration.
func hangups() <-chan os.Signal {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	return ch
}
