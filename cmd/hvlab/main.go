// Command hvlab runs the emulated outside world of hvro: EXPRESSCLUSTER X
// clusters that speak the real RESTful API, and Hyper-V hosts that are real
// WS-Management servers. "hvlab demo" shows hvro working against them.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "usage: hvlab run --topology lab.yaml | hvlab demo   (being built; see README.md)")
	os.Exit(2)
}
