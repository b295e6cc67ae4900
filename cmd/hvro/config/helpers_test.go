package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../../../deploy/examples/hvro.yaml"

// secretValues are the contents of the example's secret files. Each is
// recognisable, so a test can prove none of them leaks.
var secretValues = map[string]string{
	"secrets/admin.token":         "ADMIN-7f3a9c1e5b2d4f6a8c0e",
	"secrets/winrm.pass":          "WINRM-pass-Qx81",
	"secrets/ecx-cluster1.pass":   "ECX1-pass-Zt42",
	"secrets/ecx-cluster2.pass":   "ECX2-pass-Yh07",
	"secrets/hook-cluster1.token": "HOOK1-1b8e6d2a9f4c7e0b3d5a",
	"secrets/hook-cluster2.token": "HOOK2-6c0f3a8e1d9b4c7a2e5f",
}

// envValues are secrets some cases pass through variables.
var envValues = map[string]string{
	"HVRO_ADMIN_TOKEN": "ENVADMIN-0123456789abcdef",
	"HVRO_WINRM_PASS":  "ENVWINRM-pass-Kd93",
	"HVRO_HOOK_SHARED": "ENVHOOK-fedcba9876543210",
	"HVRO_SHORT":       "short",
	"HVRO_EMPTY":       "",
}

func fakeEnv(name string) (string, bool) {
	v, ok := envValues[name]
	return v, ok
}

// exampleDir makes a temp folder holding the example config and its
// secret files (mode 0600, with a trailing newline as editors write them).
func exampleDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "hvro.yaml"), string(data), 0o644)
	for name, v := range secretValues {
		writeFile(t, filepath.Join(dir, name), v+"\n", 0o600)
	}
	return dir
}

func writeFile(t testing.TB, name, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(name, mode); err != nil { // WriteFile's mode is cut by the umask
		t.Fatal(err)
	}
}

func exampleYAML(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// edit sets the value at a path ("clusters[1].api.timeout") to a YAML
// fragment, or deletes the key when value is del.
type edit struct{ path, value string }

const del = "\x00delete"

var segment = regexp.MustCompile(`^([^\[]*)((?:\[\d+\])*)$`)

// mutate applies edits to a YAML document through its node tree, so cases
// say what they change instead of repeating the whole file.
func mutate(t *testing.T, data []byte, edits ...edit) []byte {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		parts := strings.Split(e.path, ".")
		n := doc.Content[0]
		for i, part := range parts {
			m := segment.FindStringSubmatch(part)
			if m == nil {
				t.Fatalf("bad path %q", e.path)
			}
			key, idx := m[1], m[2]
			last := i == len(parts)-1 && idx == ""
			if last {
				setKey(t, n, key, e.value)
				break
			}
			n = child(t, n, key, e.path)
			for idx != "" {
				end := strings.IndexByte(idx, ']')
				j, _ := strconv.Atoi(idx[1:end])
				idx = idx[end+1:]
				if n.Kind != yaml.SequenceNode || j >= len(n.Content) {
					t.Fatalf("%s: no item %d", e.path, j)
				}
				if idx == "" && i == len(parts)-1 {
					n.Content[j] = fragment(t, e.value)
					break
				}
				n = n.Content[j]
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func child(t *testing.T, n *yaml.Node, key, path string) *yaml.Node {
	t.Helper()
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	t.Fatalf("%s: no key %q", path, key)
	return nil
}

func setKey(t *testing.T, n *yaml.Node, key, value string) {
	t.Helper()
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			if value == del {
				n.Content = append(n.Content[:i], n.Content[i+2:]...)
			} else {
				n.Content[i+1] = fragment(t, value)
			}
			return
		}
	}
	if value != del {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, fragment(t, value))
	}
}

func fragment(t *testing.T, value string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(value), &doc); err != nil {
		t.Fatalf("fragment %q: %v", value, err)
	}
	if len(doc.Content) == 0 {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: ""}
	}
	n := doc.Content[0]
	n.Style &^= yaml.FlowStyle // let the document decide
	return n
}

func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not Problems", err, err)
	}
	return ps
}

// assertNoSecret fails if s holds any secret value of the tests.
func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, v := range secretValues {
		if strings.Contains(s, v) {
			t.Errorf("%s shows the secret %q:\n%s", what, v, s)
		}
	}
	for name, v := range envValues {
		if len(v) >= 5 && strings.Contains(s, v) {
			t.Errorf("%s shows the value of %s:\n%s", what, name, s)
		}
	}
}

// selfSigned writes a certificate and its key (mode 0600) into dir.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	writeFile(t, certFile, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), 0o644)
	writeFile(t, keyFile, string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})), 0o600)
	return certFile, keyFile
}
