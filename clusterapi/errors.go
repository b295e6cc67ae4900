package clusterapi

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kinds of failure callers branch on with errors.Is. Every error the Client
// returns from an API call is an *Error whose Kind is one of these.
var (
	// ErrAuth: the API refused the credentials (HTTP 401/403). Not retried:
	// another endpoint of the same cluster checks the same OS account.
	ErrAuth = errors.New("authentication failed")
	// ErrNotFound: the group, server or path does not exist (HTTP 404, or an
	// empty answer for a named object).
	ErrNotFound = errors.New("not found")
	// ErrAPI: the cluster answered and refused or failed the request:
	// result.code != 0 (even inside HTTP 200), a failed operation's
	// result.message, or a 4xx other than 401/403/404.
	ErrAPI = errors.New("api error")
	// ErrTransport: no usable answer from any endpoint after retries:
	// connection errors, timeouts, HTTP 5xx.
	ErrTransport = errors.New("transport error")
	// ErrDecode: an answer that is not the expected JSON.
	ErrDecode = errors.New("unexpected answer")
)

// Error is a failed API call: what was asked, where, and what came back.
type Error struct {
	Kind     error  // ErrAuth, ErrNotFound, ErrAPI, ErrTransport or ErrDecode
	Op       string // e.g. "get group failover1"
	Cluster  string // Config.Name
	Endpoint string // base URL that gave this answer; "" when every endpoint failed
	Status   int    // HTTP status, 0 if none
	Code     int    // result.code, when the answer had one
	HasCode  bool
	Message  string // result.message
	Excerpt  string // the start of a body that could not be decoded
	// OutcomeUnknown: an operation (POST) failed after it may have reached the
	// cluster (timeout, dropped connection, unreadable answer). It was not
	// sent to another endpoint; read the group before trying again.
	OutcomeUnknown bool
	Err            error // underlying error (transport, JSON, or each endpoint's error)
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Cluster != "" {
		fmt.Fprintf(&b, " on cluster %s", e.Cluster)
	}
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " via %s", e.Endpoint)
	}
	fmt.Fprintf(&b, ": %v", e.Kind)
	if e.OutcomeUnknown {
		b.WriteString(" (outcome unknown: it may have been carried out; read the group before retrying)")
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.HasCode {
		fmt.Fprintf(&b, ": result code %d", e.Code)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %q", e.Message)
	}
	if e.Excerpt != "" {
		fmt.Fprintf(&b, ": body starts %q", e.Excerpt)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrAuth) and friends work.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

// outcome names a call's result for Config.OnRequest: ok, auth, not_found,
// api_error, transport or decode.
func outcome(err error) string {
	var e *Error
	if err == nil || !errors.As(err, &e) {
		if err == nil {
			return "ok"
		}
		return "transport"
	}
	switch e.Kind {
	case ErrAuth:
		return "auth"
	case ErrNotFound:
		return "not_found"
	case ErrAPI:
		return "api_error"
	case ErrDecode:
		return "decode"
	default:
		return "transport"
	}
}

// excerpt is the start of a body, printable and short, for error messages:
// control and format characters (escape sequences, bidi overrides) and
// broken UTF-8 become spaces, so an excerpt is safe on a terminal.
func excerpt(body []byte) string {
	const n = 120
	s := string(body)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == utf8.RuneError || r != ' ' && !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, s)
}
