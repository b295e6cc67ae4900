// Package mzwinrm builds masterzen/winrm clients (the WinRM library hvro
// itself uses, at the pinned version) for tests against the emulated hosts.
//
// The one thing to know: masterzen's default transport never reports a SOAP
// fault as an error (clientRequest.Post assigns the HTTP status error in a
// defer on unnamed results, at the pinned version and at upstream HEAD), so
// a shell-quota fault yields an empty shell id and other faults make the
// Receive loop spin. Client wraps the transport so faults become errors; the
// text keeps "OperationTimeout" so Receive still retries on TimedOut.
package mzwinrm

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"
)

// FaultChecking makes SOAP faults errors.
type FaultChecking struct{ winrm.Transporter }

// Post sends the request and turns a fault body into an error.
func (t FaultChecking) Post(c *winrm.Client, m *soap.SoapMessage) (string, error) {
	body, err := t.Transporter.Post(c, m)
	if err != nil {
		return body, err
	}
	var env struct {
		Body struct {
			Fault *struct{} `xml:"http://www.w3.org/2003/05/soap-envelope Fault"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
	}
	if xml.Unmarshal([]byte(body), &env) == nil && env.Body.Fault != nil {
		return "", errors.New("http error 500: " + body)
	}
	return body, nil
}

// Options configure a client.
type Options struct {
	HTTPS            bool
	CACert           []byte
	User, Password   string
	OperationTimeout string        // WS-Man OperationTimeout, e.g. "PT20S" (default PT60S)
	HeaderTimeout    time.Duration // Endpoint.Timeout (default 90s, above OperationTimeout)
	// Unchecked keeps masterzen's own transport, faults and all.
	Unchecked bool
}

// Client connects to addr ("127.0.0.1:15985").
func Client(addr string, o Options) (*winrm.Client, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return nil, fmt.Errorf("address %q: %w", addr, err)
	}
	if o.OperationTimeout == "" {
		o.OperationTimeout = "PT60S"
	}
	if o.HeaderTimeout == 0 {
		o.HeaderTimeout = 90 * time.Second
	}
	ep := &winrm.Endpoint{Host: host, Port: port, HTTPS: o.HTTPS, CACert: o.CACert, Timeout: o.HeaderTimeout}
	params := winrm.NewParameters(o.OperationTimeout, "en-US", 153600)
	if !o.Unchecked {
		params.TransportDecorator = func() winrm.Transporter { return FaultChecking{winrm.NewClientWithDial(nil)} }
	}
	return winrm.NewClientWithParameters(ep, o.User, o.Password, params)
}
