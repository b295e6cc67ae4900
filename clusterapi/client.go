package clusterapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-retryablehttp"
)

// Config configures a Client for one cluster.
type Config struct {
	Name               string   // cluster name, for errors and logs
	Endpoints          []string // base URLs (FIP and/or nodes), e.g. "http://192.0.2.10:29009"; tried in order
	Username           string   // OS account of the cluster nodes
	Password           string   // never logged, never in errors
	CAFile             string   // PEM bundle to verify an https endpoint's certificate
	InsecureSkipVerify bool     // accept any certificate (ECX often runs self-signed)

	Timeout      time.Duration // per HTTP attempt; default 5s
	Retries      int           // retries per endpoint after the first attempt; default 2; negative: none
	RetryWaitMin time.Duration // backoff between retries; default 200ms
	RetryWaitMax time.Duration // default 2s

	Logger *slog.Logger // default: discard
	// OnRequest, if set, hears every call to an endpoint (after its
	// retries), with outcome ok, auth, not_found, api_error, transport or decode.
	OnRequest func(endpoint, outcome string, d time.Duration)
}

const (
	defaultTimeout      = 5 * time.Second
	defaultRetries      = 2
	defaultRetryWaitMin = 200 * time.Millisecond
	defaultRetryWaitMax = 2 * time.Second
	maxAnswer           = 4 << 20
)

// Client talks to the RESTful API of one cluster through its endpoints.
//
// Each call starts at the endpoint that answered last, retries it a bounded
// number of times on transport errors and HTTP 5xx, and then moves on to the
// next. An answer (success, auth failure, not found, an API error) stops
// there: every endpoint speaks for the whole cluster. Operations (POST) move
// on only when the request cannot have been carried out (the connection was
// never made, or HTTP 5xx); after a timeout or a dropped connection their
// outcome is unknown and the error says so: poll the group, do not repeat
// blindly. A Client is safe for concurrent use.
type Client struct {
	cfg       Config
	endpoints []string
	reads     *retryablehttp.Client // GET: keep-alive, retried on any transport error
	ops       *retryablehttp.Client // POST: a fresh connection each, retried only if never sent
	log       *slog.Logger

	mu      sync.Mutex
	current int    // endpoint tried first
	last    string // endpoint that answered last
}

// New checks cfg and builds a Client. It reports every problem of cfg.
func New(cfg Config) (*Client, error) {
	var errs []error
	if len(cfg.Endpoints) == 0 {
		errs = append(errs, errors.New("endpoints: empty; give the cluster FIP and/or node URLs"))
	}
	endpoints := make([]string, 0, len(cfg.Endpoints))
	for i, raw := range cfg.Endpoints {
		ep, err := normalizeEndpoint(raw)
		if err != nil {
			errs = append(errs, fmt.Errorf("endpoints[%d]: %w", i, err))
			continue
		}
		endpoints = append(endpoints, ep)
	}
	if cfg.Username == "" {
		errs = append(errs, errors.New("username: empty; the API needs an OS account"))
	}
	if cfg.CAFile != "" && cfg.InsecureSkipVerify {
		errs = append(errs, errors.New("ca_file and insecure_skip_verify: set one, not both"))
	}
	if cfg.Timeout < 0 || cfg.RetryWaitMin < 0 || cfg.RetryWaitMax < 0 {
		errs = append(errs, errors.New("timeout and retry waits must not be negative"))
	}
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("ca_file: %w", err))
		} else {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("ca_file: %s holds no PEM certificate", cfg.CAFile))
			}
			tlsCfg.RootCAs = pool
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ECX API client of cluster %q: %w", cfg.Name, err)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = defaultTimeout
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = defaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	if cfg.RetryWaitMin == 0 {
		cfg.RetryWaitMin = defaultRetryWaitMin
	}
	if cfg.RetryWaitMax == 0 {
		cfg.RetryWaitMax = defaultRetryWaitMax
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	tr := cleanhttp.DefaultPooledTransport()
	// A system proxy in front of :29009 broke public ECX scripts (they pass
	// --noproxy); the API lives on the cluster network.
	tr.Proxy = nil
	// A dial must give up before the attempt does, so that a dead node shows
	// as "never connected" (safe to try the next node even for an operation).
	tr.DialContext = (&net.Dialer{Timeout: cfg.Timeout / 2, KeepAlive: 30 * time.Second}).DialContext
	tr.TLSClientConfig = tlsCfg
	tr.TLSHandshakeTimeout = cfg.Timeout
	hc := &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout,
		// Following a redirect would replay the password to wherever it
		// points; report it instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// Go never resends a POST that met a kept-alive connection the server had
	// just closed (Node.js, which runs the ECX API, closes idle ones after
	// 5s), and such an error would look like "outcome unknown". Operations
	// are rare: give each its own connection.
	opTr := tr.Clone()
	opTr.DisableKeepAlives = true
	oc := *hc
	oc.Transport = opTr
	return &Client{cfg: cfg, endpoints: endpoints, reads: retrying(hc, cfg, true), ops: retrying(&oc, cfg, false),
		log: log.With("cluster", cfg.Name)}, nil
}

// retrying wraps hc with cfg's retries. It is built once per kind of call
// (reads, operations) and shared: retryablehttp.Client is safe for
// concurrent use. Logger and log hooks stay nil: the client logs each call
// itself, after its retries.
func retrying(hc *http.Client, cfg Config, idempotent bool) *retryablehttp.Client {
	return &retryablehttp.Client{
		HTTPClient:   hc,
		RetryMax:     cfg.Retries,
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		CheckRetry:   retryPolicy(idempotent),
		Backoff:      retryablehttp.DefaultBackoff,
		ErrorHandler: retryablehttp.PassthroughErrorHandler, // keep the last answer to classify it
	}
}

// normalizeEndpoint turns "http://h:29009", ".../" or ".../api/v1" into the base URL.
// Credentials in the URL are refused without echoing them.
func normalizeEndpoint(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		if strings.Contains(raw, "@") {
			return "", errors.New("not a valid URL (value not shown: it may hold credentials)")
		}
		return "", fmt.Errorf("%q is not a valid URL", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q holds credentials; use username and password instead", u.Redacted())
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("%q is not an http(s) URL with a host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment", raw)
	}
	switch strings.TrimSuffix(u.Path, "/") {
	case "", "/api/v1":
	default:
		return "", fmt.Errorf("%q: the path must be empty (the client adds /api/v1/)", raw)
	}
	return u.Scheme + "://" + u.Host, nil
}

// MaxCallDuration is the longest a call can take before every endpoint has
// been tried with all its retries: each attempt's timeout plus the backoff
// between attempts (RetryWaitMin doubling up to RetryWaitMax). A caller's
// deadline shorter than this can end a call before an endpoint further down
// the list is asked.
func (c *Client) MaxCallDuration() time.Duration {
	per := time.Duration(c.cfg.Retries+1) * c.cfg.Timeout
	wait := c.cfg.RetryWaitMin
	for range c.cfg.Retries {
		per += wait
		wait = min(2*wait, c.cfg.RetryWaitMax)
	}
	return per * time.Duration(len(c.endpoints))
}

// LastEndpoint is the endpoint that answered last ("" before any answer).
func (c *Client) LastEndpoint() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Name is the cluster name the Client was configured with.
func (c *Client) Name() string { return c.cfg.Name }

// call sends one request to the first endpoint that gives an answer. decode
// checks the answer's data (nil for operations): an endpoint whose answer it
// rejects counts as broken, and the next one is asked.
func (c *Client) call(ctx context.Context, op, method, path string, body []byte, key string, decode func(json.RawMessage) error) error {
	c.mu.Lock()
	start := c.current
	c.mu.Unlock()
	var errs []error
	for i := range c.endpoints {
		idx := (start + i) % len(c.endpoints)
		ep := c.endpoints[idx]
		t0 := time.Now()
		err := c.callEndpoint(ctx, op, ep, method, path, body, key, decode)
		dur := time.Since(t0)
		oc := outcome(err)
		if c.cfg.OnRequest != nil {
			c.cfg.OnRequest(ep, oc, dur)
		}
		c.log.Debug("ECX API call", "op", op, "endpoint", ep, "outcome", oc, "duration", dur)
		if err == nil || answered(err) {
			c.mu.Lock()
			c.current, c.last = idx, ep
			c.mu.Unlock()
			return err
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
		if method != http.MethodGet && !notCarriedOut(err) {
			var e *Error
			errors.As(err, &e)
			e.OutcomeUnknown = true
			return err
		}
		if i < len(c.endpoints)-1 {
			c.log.Warn("ECX endpoint failed; trying the next", "op", op, "endpoint", ep, "err", err)
		}
	}
	if len(errs) == 1 {
		return errs[0]
	}
	var last *Error
	errors.As(errs[len(errs)-1], &last)
	return &Error{Kind: last.Kind, Op: op, Cluster: c.cfg.Name, Err: endpointErrors(errs)}
}

// endpointErrors lists every endpoint's failure on one line.
type endpointErrors []error

func (e endpointErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		var ae *Error
		if errors.As(err, &ae) {
			inner := *ae
			inner.Op, inner.Cluster = "", ""
			parts[i] = strings.TrimPrefix(inner.Error(), " via ")
		} else {
			parts[i] = err.Error()
		}
	}
	return "every endpoint failed: " + strings.Join(parts, "; ")
}

func (e endpointErrors) Unwrap() []error { return e }

// answered: the cluster gave an answer; another endpoint would say the same.
func answered(err error) bool {
	return errors.Is(err, ErrAuth) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrAPI)
}

// notCarriedOut: the request surely did nothing (no connection was made) or
// the server said it failed (HTTP 5xx), so another endpoint may be asked.
func notCarriedOut(err error) bool {
	var e *Error
	if errors.As(err, &e) && e.Status >= 500 {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retryPolicy retries transport errors and 5xx/429 like retryablehttp's
// default, except that an operation is retried only when the request
// cannot have reached the server (see notCarriedOut).
func retryPolicy(idempotent bool) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		if err != nil && !idempotent {
			var op *net.OpError
			if !errors.As(err, &op) || op.Op != "dial" {
				return false, nil
			}
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
}

func (c *Client) callEndpoint(ctx context.Context, op, ep, method, path string, body []byte, key string, decode func(json.RawMessage) error) error {
	fail := func(kind error, status int, err error) *Error {
		return &Error{Kind: kind, Op: op, Cluster: c.cfg.Name, Endpoint: ep, Status: status, Err: err}
	}
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, method, ep+"/api/v1/"+path, rawBody)
	if err != nil {
		return fail(ErrTransport, 0, err)
	}
	req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rc := c.reads
	if method != http.MethodGet {
		rc = c.ops
	}
	resp, err := rc.Do(req)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return fail(ErrTransport, 0, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return fail(ErrTransport, resp.StatusCode, fmt.Errorf("read answer: %w", err))
	}
	if len(raw) > maxAnswer {
		return fail(ErrDecode, resp.StatusCode, fmt.Errorf("answer larger than %d bytes", maxAnswer))
	}

	if st := resp.StatusCode; st < 200 || st > 299 {
		kind := ErrAPI
		switch {
		case st == http.StatusUnauthorized || st == http.StatusForbidden:
			kind = ErrAuth
		case st == http.StatusNotFound:
			kind = ErrNotFound
		case st >= 500 || st == http.StatusTooManyRequests:
			kind = ErrTransport
		}
		e := fail(kind, st, nil)
		if env, derr := decodeEnvelope(raw, ""); derr == nil && env.hasResult {
			e.Code, e.HasCode, e.Message = env.code, true, env.message
		} else if len(bytes.TrimSpace(raw)) > 0 {
			e.Excerpt = excerpt(raw)
		}
		if loc := resp.Header.Get("Location"); st >= 300 && st < 400 && loc != "" {
			e.Message = "redirected to " + loc
		}
		return e
	}
	env, err := decodeEnvelope(raw, key)
	if err != nil {
		e := fail(ErrDecode, resp.StatusCode, err)
		e.Excerpt = excerpt(raw)
		return e
	}
	if env.hasResult && env.code != 0 {
		e := fail(ErrAPI, resp.StatusCode, nil)
		e.Code, e.HasCode, e.Message = env.code, true, env.message
		return e
	}
	// NEC's own client treats a non-empty message as the failure of an
	// operation even when the code is 0.
	if method != http.MethodGet && env.message != "" {
		e := fail(ErrAPI, resp.StatusCode, nil)
		e.Code, e.HasCode, e.Message = env.code, true, env.message
		return e
	}
	if decode != nil {
		if err := decode(env.data); err != nil {
			e := fail(ErrDecode, resp.StatusCode, err)
			e.Excerpt = excerpt(raw)
			return e
		}
	}
	return nil
}

// Groups lists every failover group.
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out []Group
	err := c.call(ctx, "list groups", http.MethodGet, "groups", nil, "groups", func(d json.RawMessage) (err error) {
		out, err = decodeGroups(d)
		return err
	})
	return out, err
}

// Group reads one failover group.
func (c *Client) Group(ctx context.Context, name string) (Group, error) {
	return getNamed(ctx, c, "group", "groups", name, decodeGroups, func(g *Group) *string { return &g.Name })
}

// getNamed reads one named object: GET collection/name, decoded like the
// collection, and the object for name picked from the answer (see pick),
// given the asked name. noun names it in errors ("group", "server").
func getNamed[T any](ctx context.Context, c *Client, noun, collection, name string,
	decode func(json.RawMessage) ([]T, error), nameOf func(*T) *string) (T, error) {
	var zero T
	op := fmt.Sprintf("get %s %s", noun, name)
	if name == "" {
		return zero, &Error{Kind: ErrNotFound, Op: op, Cluster: c.cfg.Name, Message: "empty " + noun + " name"}
	}
	var list []T
	err := c.call(ctx, op, http.MethodGet, collection+"/"+url.PathEscape(name), nil, collection, func(d json.RawMessage) (err error) {
		list, err = decode(d)
		return err
	})
	if err != nil {
		return zero, err
	}
	v, err := pick(list, name, func(v T) string { return *nameOf(&v) })
	if err != nil {
		return zero, &Error{Kind: err, Op: op, Cluster: c.cfg.Name, Endpoint: c.LastEndpoint(),
			Message: fmt.Sprintf("answer holds %d %s, none named %q", len(list), collection, name)}
	}
	*nameOf(&v) = name
	return v, nil
}

// pick finds name in an answer for one named object: exact name first, then
// ignoring case, then a lone nameless object (as ?select= answers can be).
func pick[T any](list []T, name string, nameOf func(T) string) (T, error) {
	var zero T
	for _, v := range list {
		if nameOf(v) == name {
			return v, nil
		}
	}
	for _, v := range list {
		if strings.EqualFold(nameOf(v), name) {
			return v, nil
		}
	}
	if len(list) == 1 && nameOf(list[0]) == "" {
		return list[0], nil
	}
	if len(list) == 0 {
		return zero, ErrNotFound
	}
	return zero, ErrDecode
}

// Servers lists the cluster's servers.
func (c *Client) Servers(ctx context.Context) ([]Server, error) {
	var out []Server
	err := c.call(ctx, "list servers", http.MethodGet, "servers", nil, "servers", func(d json.RawMessage) (err error) {
		out, err = decodeServers(d)
		return err
	})
	return out, err
}

// Server reads one server.
func (c *Client) Server(ctx context.Context, name string) (Server, error) {
	return getNamed(ctx, c, "server", "servers", name, decodeServers, func(s *Server) *string { return &s.Name })
}

// Resources lists every group resource.
func (c *Client) Resources(ctx context.Context) ([]Resource, error) {
	var out []Resource
	err := c.call(ctx, "list resources", http.MethodGet, "resources", nil, "resources", func(d json.RawMessage) (err error) {
		out, err = decodeResources(d)
		return err
	})
	return out, err
}

// Cluster reads the cluster object.
func (c *Client) Cluster(ctx context.Context) (ClusterInfo, error) {
	var out ClusterInfo
	err := c.call(ctx, "get cluster", http.MethodGet, "cluster", nil, "cluster", func(d json.RawMessage) (err error) {
		out, err = decodeCluster(d)
		return err
	})
	return out, err
}
