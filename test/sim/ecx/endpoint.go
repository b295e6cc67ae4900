package ecx

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"
)

// A cluster answers on several endpoints, like a real one answers on each
// node's address and on its FIP. An endpoint is a name: HandlerFor(name)
// gives a handler to mount anywhere; Listen(name, addr) also owns the
// listener. An endpoint is down while an endpoint_down fault names it (or
// names no endpoint), or while the server of the same name is down. A down
// Listen endpoint refuses connections, as a dead node does; a down handler
// can only drop the connection without an answer.
type endpoint struct {
	name string
	addr string       // "" unless served by Listen
	srv  *http.Server // nil while down
	// ln is closed here, not only by srv.Close: the server learns of its
	// listener only once its Serve goroutine runs, and until then the
	// kernel would accept (then reset) connections a dead node refuses.
	ln net.Listener
}

// EndpointState is one endpoint in State.
type EndpointState struct {
	Name string `json:"name"`
	Addr string `json:"addr,omitempty"` // set for endpoints served by Listen
	Up   bool   `json:"up"`
}

// Handler is the RESTful API (/api/v1/...) as the anonymous endpoint "".
func (c *Cluster) Handler() http.Handler { return c.HandlerFor("") }

// HandlerFor is the RESTful API as the endpoint called name; faults and
// server crashes can target it by that name.
func (c *Cluster) HandlerFor(name string) http.Handler {
	c.mu.Lock()
	if _, ok := c.endpoints[name]; !ok {
		c.endpoints[name] = &endpoint{name: name}
	}
	c.mu.Unlock()
	return &apiHandler{c: c, endpoint: name}
}

// Listen serves the RESTful API as endpoint name on addr (e.g.
// "127.0.0.1:0") until Close, and returns the address it listens on. While
// the endpoint is down its listener is closed, so connections are refused;
// it listens again on the same address when the endpoint comes back.
func (c *Cluster) Listen(name, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("cluster %s endpoint %q: %w", c.cfg.Name, name, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		ln.Close()
		return nil, closedRefusal
	}
	if ep, ok := c.endpoints[name]; ok && ep.addr != "" {
		ln.Close()
		return nil, fmt.Errorf("cluster %s endpoint %q already listens on %s", c.cfg.Name, name, ep.addr)
	}
	ep := &endpoint{name: name, addr: ln.Addr().String()}
	c.endpoints[name] = ep
	if c.endpointDownLocked(name) {
		ln.Close()
	} else {
		c.serveLocked(ep, ln)
	}
	return ln.Addr(), nil
}

func (c *Cluster) serveLocked(ep *endpoint, ln net.Listener) {
	ep.srv = &http.Server{
		Handler:           &apiHandler{c: c, endpoint: ep.name},
		ReadHeaderTimeout: 10 * time.Second,
		// Node.js, which runs the real API server, closes idle keep-alive
		// connections after 5s; clients must cope with that.
		IdleTimeout: 5 * time.Second,
		ErrorLog:    slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	ep.ln = ln
	go ep.srv.Serve(ln)
}

// stopLocked takes an endpoint down at once: connections are refused from
// here on. Caller holds mu.
func (ep *endpoint) stopLocked() error {
	err := ep.srv.Close() // closes ln too if Serve already runs
	if lerr := ep.ln.Close(); !errors.Is(lerr, net.ErrClosed) {
		err = errors.Join(err, lerr)
	}
	ep.srv, ep.ln = nil, nil
	return err
}

// endpointDownLocked tells whether the endpoint should not answer. Caller holds mu.
func (c *Cluster) endpointDownLocked(name string) bool {
	for _, f := range c.faults {
		if f.Kind == FaultEndpointDown && (f.Endpoint == "" || f.Endpoint == name) {
			return true
		}
	}
	if s := c.server(name); s != nil && name != "" {
		return !s.up
	}
	return false
}

func (c *Cluster) endpointDown(name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.endpointDownLocked(name)
}

// syncEndpoints closes the listeners of endpoints that went down and listens
// again for those that came back.
func (c *Cluster) syncEndpoints() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	var errs []error
	for _, ep := range c.endpoints {
		if ep.addr == "" {
			continue
		}
		down := c.endpointDownLocked(ep.name)
		switch {
		case down && ep.srv != nil:
			if err := ep.stopLocked(); err != nil {
				errs = append(errs, fmt.Errorf("cluster %s endpoint %q: stop: %w", c.cfg.Name, ep.name, err))
			}
			c.log.Info("endpoint down", "endpoint", ep.name, "addr", ep.addr)
		case !down && ep.srv == nil:
			ln, err := net.Listen("tcp", ep.addr)
			if err != nil {
				errs = append(errs, fmt.Errorf("cluster %s endpoint %q: listen again on %s: %w", c.cfg.Name, ep.name, ep.addr, err))
				continue
			}
			c.serveLocked(ep, ln)
			c.log.Info("endpoint up", "endpoint", ep.name, "addr", ep.addr)
		}
	}
	return errors.Join(errs...)
}

func (c *Cluster) closeEndpoints() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, ep := range c.endpoints {
		if ep.srv != nil {
			errs = append(errs, ep.stopLocked())
		}
	}
	return errors.Join(errs...)
}

// endpointStates lists endpoints by name. Caller holds mu.
func (c *Cluster) endpointStates() []EndpointState {
	out := []EndpointState{}
	for _, ep := range c.endpoints {
		out = append(out, EndpointState{Name: ep.name, Addr: ep.addr, Up: !c.endpointDownLocked(ep.name)})
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].Name, out[j].Name) < 0 })
	return out
}

// dropConnection ends a request without any answer, as a node that died mid-request.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}
