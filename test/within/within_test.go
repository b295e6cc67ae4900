package within

import (
	"testing"
	"time"
)

// fatalT records a Fatalf and stops the goroutine as testing.T does.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = format
	panic(f)
}

func caught(f *fatalT, fn func()) (failed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != f {
				panic(r)
			}
			failed = true
		}
	}()
	fn()
	return false
}

func TestRecv(t *testing.T) {
	ch := make(chan int, 1)
	ch <- 7
	if v := Recv(t, ch, "seven"); v != 7 {
		t.Fatalf("Recv = %d, want 7", v)
	}
}

func TestEventually(t *testing.T) {
	n := 0
	Eventually(t, "the third call", func() bool { n++; return n == 3 })
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestTimeouts(t *testing.T) {
	f := &fatalT{}
	if !caught(f, func() { recv(f, make(chan int), "nothing", 10*time.Millisecond) }) || f.msg != "no %s within %s" {
		t.Fatalf("recv on a silent channel: msg %q", f.msg)
	}
	f = &fatalT{}
	if !caught(f, func() { eventually(f, "never", func() bool { return false }, 10*time.Millisecond) }) || f.msg != "timed out after %s waiting for %s" {
		t.Fatalf("eventually on a false cond: msg %q", f.msg)
	}
}
