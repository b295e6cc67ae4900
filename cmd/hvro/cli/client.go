package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// HTTPClient is an HTTP client for hvro's API: no proxy, optional CA file
// or no verification, and no redirects: hvro never answers with one, and
// following it would carry the bearer token to wherever it points.
func HTTPClient(caFile string, insecure bool, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // hvro is local to the cluster network; a proxy would not reach it
	if caFile != "" || insecure {
		cfg := &tls.Config{InsecureSkipVerify: insecure}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
			}
			cfg.RootCAs = pool
		}
		tr.TLSClientConfig = cfg
	}
	return &http.Client{Transport: tr, Timeout: timeout, CheckRedirect: refuseRedirect}, nil
}

// errRedirect matches the error of a request that hvro answered with a
// redirect: the URL is wrong (http for https, a proxy, another service).
var errRedirect = errors.New("redirect not followed")

func refuseRedirect(req *http.Request, via []*http.Request) error {
	return fmt.Errorf("hvro answered with a redirect to %s, not followed (it would take the token along): point the URL at hvro itself: %w",
		printable(req.URL.Redacted(), 200), errRedirect)
}

// apiClient talks to a running hvro with the admin token.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

type apiError struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the answer's Retry-After, when it had one.
	RetryAfter time.Duration
}

func (e *apiError) Error() string {
	return fmt.Sprintf("hvro answered %d %s: %s", e.Status, e.Code, e.Message)
}

func (c *apiClient) do(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if errors.Is(err, errRedirect) {
		return err
	}
	if err != nil {
		return fmt.Errorf("cannot reach hvro at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		ae := &apiError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(data)),
			RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
		if json.Unmarshal(data, &e) == nil && e.Error.Code != "" {
			ae.Code, ae.Message = e.Error.Code, e.Error.Message
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err := w.Write(data)
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("hvro's answer to %s %s is not the expected JSON: %w", method, path, err)
	}
	return nil
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date; zero
// when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(min(n, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// errUsage marks an error as the caller's misuse (exit 2, not 1); test it
// with errors.Is, never by the message: an answer of hvro may say "usage".
var errUsage = errors.New("usage")
