// Package ctlapi is the JSON plumbing the emulators' control APIs share
// (CONTRACTS.md section 5): replies, the {"error":{"code","message"}}
// envelope, and strictly read request bodies.
package ctlapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// MaxBody is the largest request body a control API reads.
const MaxBody = 64 << 10

// Reply writes v as the JSON answer with status.
func Reply(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(envelope("internal", "encode: "+err.Error()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// Error writes the error envelope with status.
func Error(w http.ResponseWriter, status int, code, msg string) {
	Reply(w, status, envelope(code, msg))
}

func envelope(code, msg string) map[string]any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

// Decode reads r's JSON body into v: unknown fields, a second value and a
// body over MaxBody are errors. An empty body leaves v alone when the body
// is optional and is an error otherwise.
func Decode(r *http.Request, v any, optional bool) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBody))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		if optional {
			return nil
		}
		return errors.New("body: missing, want a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body: %w", err)
	}
	if dec.More() {
		return errors.New("body: more than one JSON value")
	}
	return nil
}
