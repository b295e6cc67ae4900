package main

import (
	"fmt"
	"io"
)

func serveCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hvro serve: not wired yet")
	return 1
}

func checkConfigCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hvro check-config: not wired yet")
	return 1
}

func backupCmd(args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "hvro backup: not wired yet")
	return 1
}
