package wsman

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// LabCA is a throw-away certificate authority for the lab's HTTPS
// listeners, so clients can verify certificates (hvro's TLS settings need a
// real peer) instead of skipping verification. Its key never leaves memory.
type LabCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	file    string
}

// NewLabCA creates a CA and writes its certificate to dir/ca.pem.
func NewLabCA(dir string) (*LabCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wsman: lab CA key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "hvro lab CA", Organization: []string{"hvro lab"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("wsman: lab CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("wsman: lab CA certificate: %w", err)
	}
	ca := &LabCA{cert: cert, key: key, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.file = filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca.file, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("wsman: write lab CA certificate: %w", err)
	}
	return ca, nil
}

// CertFile is the path of the CA certificate (PEM).
func (ca *LabCA) CertFile() string { return ca.file }

// CertPEM is the CA certificate in PEM form (masterzen's Endpoint.CACert).
func (ca *LabCA) CertPEM() []byte { return append([]byte{}, ca.certPEM...) }

// Pool is a certificate pool holding only the lab CA.
func (ca *LabCA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ServerTLS issues a server certificate for the given host names (and IP
// addresses) plus 127.0.0.1, and returns a TLS configuration serving it.
func (ca *LabCA) ServerTLS(hostnames ...string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("wsman: server key: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, h := range hostnames {
		if h == "" {
			return nil, errors.New("wsman: empty host name for a server certificate")
		}
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	tmpl.Subject = pkix.Name{CommonName: "127.0.0.1"}
	if len(hostnames) > 0 {
		tmpl.Subject.CommonName = hostnames[0]
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("wsman: server certificate for %v: %w", hostnames, err)
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{der, ca.cert.Raw},
			PrivateKey:  key,
		}},
	}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n.Add(n, big.NewInt(1))
}
