package config

import (
	"crypto/subtle"
	"fmt"
	"log/slog"
)

const redacted = "[redacted]"

// Secret holds a password or token read from a *_file or *_env. Every way
// of printing it (fmt verbs, JSON, YAML, text, slog) shows "[redacted]", or
// "[unset]" when it holds nothing; Value returns the secret itself.
//
// The value sits behind a pointer so that even a printer that walks
// unexported fields with reflection shows an address, not the secret.
type Secret struct{ p *secretValue }

type secretValue struct{ s string }

// NewSecret wraps v, for configs built in code (the lab, tests).
func NewSecret(v string) Secret { return Secret{p: &secretValue{s: v}} }

// Value is the secret itself; pass it only to what authenticates.
func (s Secret) Value() string {
	if s.p == nil {
		return ""
	}
	return s.p.s
}

// IsZero reports whether the secret is unset or empty.
func (s Secret) IsZero() bool { return s.Value() == "" }

// Equal compares candidate with the secret in constant time. An unset
// Secret equals nothing, not even "".
func (s Secret) Equal(candidate string) bool {
	if s.IsZero() {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(s.p.s), []byte(candidate)) == 1
}

func (s Secret) String() string {
	if s.IsZero() {
		return "[unset]"
	}
	return redacted
}

// GoString covers %#v.
func (s Secret) GoString() string { return s.String() }

// Format covers every verb, so %x or %q cannot bypass String.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", s.String())
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalText covers encoders that use encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON covers encoding/json and slog's JSON handler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// MarshalYAML covers gopkg.in/yaml.v3.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }

// LogValue covers log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
