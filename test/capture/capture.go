// Package capture collects what tests let loggers and subprocesses write,
// from any number of goroutines at once.
package capture

import (
	"bytes"
	"sync"
)

// Buffer is an io.Writer whose content can be read while writers are still
// writing. The zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
