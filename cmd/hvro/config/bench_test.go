package config

import (
	"path/filepath"
	"testing"
)

// BenchmarkLoadExample loads the example config with its six secret files:
// what `hvro serve` and `hvro check-config` pay once at start.
func BenchmarkLoadExample(b *testing.B) {
	path := filepath.Join(exampleDir(b), "hvro.yaml")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(path); err != nil {
			b.Fatal(err)
		}
	}
}
