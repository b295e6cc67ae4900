//go:build windows

package main

import "os"

// hangups: Windows has no SIGHUP; reload with POST /v1/config/reload.
func hangups() <-chan os.Signal { return make(chan os.Signal) }
