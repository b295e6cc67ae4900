package ecx

import (
	"errors"
	"fmt"
	"strings"
)

// FaultKind names an injected fault of the RESTful API.
type FaultKind string

const (
	FaultHTTP500      FaultKind = "http500"       // HTTP 500 with a JSON result (code 99)
	FaultResultCode   FaultKind = "result_code"   // HTTP 200 with result.code != 0; POSTs do nothing
	FaultHang         FaultKind = "hang"          // no answer until the client gives up
	FaultNonJSON      FaultKind = "non_json"      // HTTP 200 with an HTML page
	FaultUnauthorized FaultKind = "unauthorized"  // HTTP 401 even with the right password
	FaultEndpointDown FaultKind = "endpoint_down" // connections refused (Listen) or dropped (HandlerFor) until cleared
	FaultNone         FaultKind = "none"          // clears the faults of Endpoint ("" = all)
)

// Fault is a fault injected into the cluster's RESTful API.
type Fault struct {
	Kind     FaultKind `json:"kind"`
	Endpoint string    `json:"endpoint,omitempty"` // endpoint name of HandlerFor/Listen; "" = every endpoint
	Path     string    `json:"path,omitempty"`     // only requests whose path after /api/v1/ starts with this, e.g. "groups/failover1/move"
	Times    int       `json:"times,omitempty"`    // the next Times matching requests; 0 = until cleared
	Code     int       `json:"code,omitempty"`     // result_code: the result.code (default 99)
	Message  string    `json:"message,omitempty"`  // result_code, http500: the result.message
}

// SetFault adds a fault, or with Kind "none" removes the faults of
// Endpoint (all faults when Endpoint is ""). Several faults may be active;
// a request gets the first that matches it. endpoint_down is a state, not a
// count: it lasts until cleared and takes no Path or Times.
func (c *Cluster) SetFault(f Fault) error {
	f.Path = strings.TrimPrefix(strings.TrimPrefix(f.Path, "/"), "api/v1/")
	var errs []error
	switch f.Kind {
	case FaultHTTP500, FaultResultCode, FaultHang, FaultNonJSON, FaultUnauthorized, FaultNone:
	case FaultEndpointDown:
		if f.Path != "" || f.Times != 0 {
			errs = append(errs, fmt.Errorf("fault endpoint_down: path %q and times %d must be empty; it lasts until cleared with kind none", f.Path, f.Times))
		}
	default:
		errs = append(errs, fmt.Errorf("fault kind %q is not one of http500, result_code, hang, non_json, unauthorized, endpoint_down, none", f.Kind))
	}
	if f.Times < 0 {
		errs = append(errs, fmt.Errorf("fault times %d is negative", f.Times))
	}
	if f.Kind == FaultResultCode && f.Code == 0 {
		f.Code = CodeInternal
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: %w", c.cfg.Name, err)
	}
	c.mu.Lock()
	if f.Kind == FaultNone {
		kept := c.faults[:0]
		for _, old := range c.faults {
			if f.Endpoint != "" && old.Endpoint != f.Endpoint {
				kept = append(kept, old)
			}
		}
		clear(c.faults[len(kept):])
		c.faults = kept
	} else {
		c.faults = append(c.faults, &f)
	}
	c.mu.Unlock()
	c.log.Info("fault set", "kind", f.Kind, "endpoint", f.Endpoint, "path", f.Path, "times", f.Times)
	return c.syncEndpoints()
}

// takeFault returns the first fault matching a request and counts it.
func (c *Cluster) takeFault(endpoint, apiPath string) *Fault {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, f := range c.faults {
		if f.Kind == FaultEndpointDown || (f.Endpoint != "" && f.Endpoint != endpoint) || !strings.HasPrefix(apiPath, f.Path) {
			continue
		}
		taken := *f
		if f.Times > 0 {
			f.Times--
			if f.Times == 0 {
				c.faults = append(c.faults[:i], c.faults[i+1:]...)
			}
		}
		return &taken
	}
	return nil
}
