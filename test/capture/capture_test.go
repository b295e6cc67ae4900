package capture

import (
	"strings"
	"sync"
	"testing"
)

// TestConcurrentWrites: every write lands whole, and reading while writing
// is safe (run with -race).
func TestConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				b.Write([]byte("line\n"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := strings.Count(b.String(), "line\n"); got != 800 || len(b.String()) != 800*len("line\n") {
		t.Fatalf("%d whole lines in %d bytes, want 800", got, len(b.String()))
	}
}
