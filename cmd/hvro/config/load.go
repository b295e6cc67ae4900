package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
)

// Files is how Load and Parse look at the files a config names. The
// default is the operating system; tests may fake it.
type Files interface {
	Stat(name string) (fs.FileInfo, error)
	ReadFile(name string) ([]byte, error)
}

// DirProber is a Files that can tell whether a folder takes new files.
// Load checks data_dir with it; a Files without it skips that check.
type DirProber interface {
	ProbeDir(dir string) error
}

type osFiles struct{}

func (osFiles) Stat(name string) (fs.FileInfo, error) { return os.Stat(name) }
func (osFiles) ReadFile(name string) ([]byte, error)  { return os.ReadFile(name) }

// ProbeDir creates and removes a file in dir: the only reliable answer to
// "may hvro write here" (modes, ACLs, read-only mounts, quotas, the
// account hvro runs as all have a say).
func (osFiles) ProbeDir(dir string) error {
	f, err := os.CreateTemp(dir, ".hvro-check-config-*")
	if err != nil {
		return err
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// Option changes how Load and Parse read the outside world.
type Option func(*loader)

// WithEnv replaces os.LookupEnv for *_env secrets.
func WithEnv(lookup func(name string) (string, bool)) Option {
	return func(l *loader) { l.env = lookup }
}

// ReadOnly is for a caller that only reads the store (hvro backup): it
// skips the check that data_dir takes new files, which an operator with
// read access, or a read-only mount, would fail.
func ReadOnly() Option {
	return func(l *loader) { l.readOnly = true }
}

// WithFiles replaces the file system for *_file secrets, TLS and CA files
// and the data_dir check.
func WithFiles(f Files) Option {
	return func(l *loader) { l.files = f }
}

// WithModeCheck turns the Unix permission check of secret files on or off;
// it is on by default except on Windows, where modes mean nothing.
func WithModeCheck(on bool) Option {
	return func(l *loader) { l.checkMode = on }
}

type loader struct {
	env       func(string) (string, bool)
	files     Files
	checkMode bool
	readOnly  bool // the caller only reads data_dir: no write check
}

func newLoader(opts []Option) *loader {
	l := &loader{env: os.LookupEnv, files: osFiles{}, checkMode: runtime.GOOS != "windows"}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Load reads the config file at path: see Parse. Its error is either the
// failure to read path itself or Problems.
func Load(path string, opts ...Option) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(data, filepath.Dir(abs), opts...)
}

// Parse decodes data strictly over the defaults, resolves relative paths
// against dir (the config file's folder), checks every rule, and reads
// every secret. It returns the Config only when there is no problem;
// otherwise the error is Problems, all of them, in file order.
func Parse(data []byte, dir string, opts ...Option) (*Config, error) {
	l := newLoader(opts)
	c := Defaults()
	ps := &problems{lines: map[string]int{}}
	bad, ok := decodeDocument(data, c, ps)
	if !ok {
		return nil, ps.err()
	}
	c.lines = ps.lines
	c.complete(dir)
	decoded := len(ps.list)
	k := &checker{problems: ps, c: c, io: l}
	k.run()
	ps.list = append(ps.list[:decoded], dropUnder(ps.list[decoded:], bad)...)
	if err := k.err(); err != nil {
		return nil, err
	}
	c.Warnings = k.sortedWarnings()
	return c, nil
}

// dropUnder removes the problems at or below one of the paths in bad.
func dropUnder(list Problems, bad []string) Problems {
	out := list[:0]
next:
	for _, p := range list {
		for _, b := range bad {
			if p.Path == b || strings.HasPrefix(p.Path, b+".") || strings.HasPrefix(p.Path, b+"[") || b == "" {
				continue next
			}
		}
		out = append(out, p)
	}
	return out
}

var invisible = strings.NewReplacer(" ", "", "\u200e", "", "\u200f", "", "\ufeff", "", "\u00a0", "")

// complete fills what depends on other fields and writes values in their
// canonical form: relative paths become absolute, enums get their case.
func (c *Config) complete(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	abs(&c.Auth.AdminTokenFile)
	abs(&c.WinRM.PasswordFile)
	abs(&c.WinRM.CAFile)
	c.LogLevel = strings.ToLower(c.LogLevel)
	c.LogFormat = strings.ToLower(c.LogFormat)
	c.WinRM.Auth = strings.ToLower(c.WinRM.Auth)
	for i := range c.Clusters {
		cl := &c.Clusters[i]
		abs(&cl.API.PasswordFile)
		abs(&cl.API.CAFile)
		abs(&cl.HookTokenFile)
	}
	for i := range c.Pairs {
		p := &c.Pairs[i]
		if p.VMName == "" {
			p.VMName = p.Name
		}
		r := &p.Replication
		for _, a := range []string{AuthKerberos, AuthCertificate} {
			if strings.EqualFold(r.Authentication, a) {
				r.Authentication = a
			}
		}
		r.Initial = strings.ToLower(r.Initial)
		// The certificate dialog shows "a1 b2 ..." and copying from it
		// often brings an invisible left-to-right mark along.
		r.CertificateThumbprint = strings.ToUpper(invisible.Replace(r.CertificateThumbprint))
	}
}

// maxSecretFile bounds a secret file: it holds one line.
const maxSecretFile = 64 << 10

// stat reports why name cannot be used, naming the file; ok is false then.
func (l *loader) stat(k *checker, path, name string) (fs.FileInfo, bool) {
	fi, err := l.files.Stat(name)
	if err != nil {
		fileProblem(k, path, name, err)
		return nil, false
	}
	return fi, true
}

// regular stats name once and checks that it is a regular file.
func (l *loader) regular(k *checker, path, name string) (fs.FileInfo, bool) {
	fi, ok := l.stat(k, path, name)
	if !ok {
		return nil, false
	}
	if !fi.Mode().IsRegular() {
		k.add(path, "%s is not a regular file", quote(name))
		return nil, false
	}
	return fi, true
}

// read reads a regular file.
func (l *loader) read(k *checker, path, name string) ([]byte, bool) {
	if _, ok := l.regular(k, path, name); !ok {
		return nil, false
	}
	return l.readFile(k, path, name)
}

// readFile reads a file regular has already checked.
func (l *loader) readFile(k *checker, path, name string) ([]byte, bool) {
	data, err := l.files.ReadFile(name)
	if err != nil {
		fileProblem(k, path, name, err)
		return nil, false
	}
	return data, true
}

// fileProblem records why a file could not be used, in the words an
// operator acts on.
func fileProblem(k *checker, path, name string, err error) {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		k.add(path, "file %s does not exist", quote(name))
	case errors.Is(err, fs.ErrPermission):
		k.add(path, "cannot read %s: permission denied (check the account hvro runs as)", quote(name))
	default:
		k.add(path, "cannot read %s: %v", quote(name), err)
	}
}

// private checks that only the owner may touch a file holding a secret.
func (l *loader) private(k *checker, path, name string, fi fs.FileInfo) bool {
	if !l.checkMode {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case perm&0o044 != 0:
		k.add(path, "mode %04o: must not be readable by group or others (chmod 600 %s)", perm, name)
	case perm&0o077 != 0:
		k.add(path, "mode %04o: must not grant group or others any access (chmod 600 %s)", perm, name)
	default:
		return true
	}
	return false
}

// secretFile reads a one-line secret. Nothing of its content reaches a
// message, only its shape.
func (l *loader) secretFile(k *checker, path, name string) (string, bool) {
	fi, ok := l.regular(k, path, name)
	if !ok || !l.private(k, path, name, fi) {
		return "", false
	}
	if fi.Size() > maxSecretFile {
		k.add(path, "%s has %d bytes; a secret file holds the secret on one line", quote(name), fi.Size())
		return "", false
	}
	data, ok := l.readFile(k, path, name)
	if !ok {
		return "", false
	}
	// Editors end files with a newline, Notepad may start them with a BOM.
	s := strings.TrimRight(strings.TrimPrefix(string(data), "\ufeff"), "\r\n")
	switch {
	case strings.TrimSpace(s) == "":
		k.add(path, "%s is empty", quote(name))
		return "", false
	case strings.ContainsAny(s, "\r\n"):
		k.add(path, "%s has more than one line; a secret file holds the secret alone", quote(name))
		return "", false
	}
	return s, true
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (l *loader) secretEnv(k *checker, path, name string) (string, bool) {
	if !envName.MatchString(name) {
		// Not echoed: a secret pasted here by mistake must not be printed.
		k.add(path, "not an environment variable name (letters, digits and _); the value is not shown")
		return "", false
	}
	v, ok := l.env(name)
	switch {
	case !ok:
		k.add(path, "environment variable %s is not set", name)
		return "", false
	case strings.TrimSpace(v) == "":
		k.add(path, "environment variable %s is empty", name)
		return "", false
	}
	return v, true
}

func (l *loader) dir(k *checker, path, name string) {
	fi, err := l.files.Stat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return // serve creates it
	}
	if err != nil {
		k.add(path, "cannot use %s: %v", quote(name), err)
		return
	}
	if !fi.IsDir() {
		k.add(path, "%s is not a folder", quote(name))
		return
	}
	p, ok := l.files.(DirProber)
	if !ok || l.readOnly {
		return
	}
	if err := p.ProbeDir(name); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the message already
		}
		k.add(path, "%s is not writable: %v (hvro keeps its store there; check the folder's permissions for the account hvro runs as, and that its file system is not read-only)", quote(name), err)
	}
}

func (l *loader) caFile(k *checker, path, name string) {
	data, ok := l.read(k, path, name)
	if ok && !x509.NewCertPool().AppendCertsFromPEM(data) {
		k.add(path, "%s holds no PEM certificate", quote(name))
	}
}

func (l *loader) keyPair(k *checker, certFile, keyFile string) {
	cert, certOK := l.read(k, "tls.cert_file", certFile)
	var key []byte
	keyOK := false
	if fi, ok := l.regular(k, "tls.key_file", keyFile); ok && l.private(k, "tls.key_file", keyFile, fi) {
		key, keyOK = l.readFile(k, "tls.key_file", keyFile)
	}
	if !certOK || !keyOK {
		return
	}
	// X509KeyPair's errors describe PEM blocks, never key material.
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		k.add("tls", "cert_file and key_file do not form a key pair: %v", err)
	}
}

// ReadSecretFile reads a secret file that is named outside a config (the
// CLI's --token-file) by the rules of the config's *_file keys: a regular
// file only its owner may read (on Unix), holding the secret on one line,
// after an optional BOM. The error never holds the secret.
func ReadSecretFile(path string) (string, error) {
	l := newLoader(nil)
	k := &checker{problems: &problems{}, io: l}
	s, ok := l.secretFile(k, "", path)
	if !ok {
		return "", k.list
	}
	return s, nil
}
