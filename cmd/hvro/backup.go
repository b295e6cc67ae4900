package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/hvro/hvro/cmd/hvro/cli"
	"github.com/hvro/hvro/cmd/hvro/config"
	"github.com/hvro/hvro/store"
)

// backupCmd copies the store consistently: directly when hvro is stopped,
// through the running service's API when it holds the store's lock. It
// only ever adds --out: an existing file, the live store above all, is
// never replaced or removed, whatever goes wrong.
func backupCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hvro backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "configuration file (hvro.yaml)")
	out := fs.String("out", "", "file to write the copy to (must not exist)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *path == "" || *out == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "hvro backup: usage: hvro backup --config hvro.yaml --out FILE")
		return 2
	}
	cfg, err := config.Load(*path, config.ReadOnly())
	if err != nil {
		fmt.Fprintf(stderr, "hvro backup: %s is not a valid configuration:\n%v\n", *path, err)
		return 2
	}
	n, how, err := backup(cfg, *out)
	if err != nil {
		fmt.Fprintf(stderr, "hvro backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %d bytes to %s (%s)\n", n, *out, how)
	return 0
}

// backup refuses the live store, then lets store.CreateBackup write the
// copy: from the store itself when hvro is stopped, from the running
// hvro's API when it holds the store's lock.
func backup(cfg *config.Config, out string) (n int64, how string, err error) {
	live := filepath.Join(cfg.DataDir, "hvro.db")
	if err := notLiveStore(live, out); err != nil {
		return 0, "", err
	}
	n, err = store.CreateBackup(out, func(w io.Writer) (int64, error) {
		st, err := store.Open(live, store.Options{ReadOnly: true, LockTimeout: 200 * time.Millisecond})
		switch {
		case err == nil:
			how = "offline copy"
			defer st.Close()
			return st.Backup(w)
		case errors.Is(err, store.ErrLocked):
			how = "online copy through the API"
			return backupOnline(cfg, w)
		}
		return 0, err
	})
	return n, how, err
}

// notLiveStore refuses an out that names the live store, by its path, a
// symlink, a linked folder or a hard link.
func notLiveStore(live, out string) error {
	refuse := fmt.Errorf("--out %s is the live store %s; write the copy elsewhere", out, live)
	if resolved(live) == resolved(out) {
		return refuse
	}
	a, errA := os.Stat(live)
	b, errB := os.Stat(out)
	if errA == nil && errB == nil && os.SameFile(a, b) {
		return refuse
	}
	return nil
}

// resolved is p made absolute with every symlink in it followed, as far as
// it exists; a file that does not exist yet is resolved through its folder.
func resolved(p string) string {
	abs, err := filepath.Abs(p)
	if err != nil {
		abs = filepath.Clean(p)
	}
	if r, err := filepath.EvalSymlinks(abs); err == nil {
		abs = r
	} else if d, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		abs = filepath.Join(d, filepath.Base(abs))
	}
	if runtime.GOOS == "windows" {
		abs = strings.ToLower(abs) // NTFS names ignore case
	}
	return abs
}

// localAddr is where this machine reaches a service listening on listen:
// a wildcard address ("", 0.0.0.0, ::, [::]) is dialed on loopback.
func localAddr(listen string) string {
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		if ip != nil && ip.To4() == nil {
			return net.JoinHostPort("::1", p)
		}
		return net.JoinHostPort("127.0.0.1", p)
	}
	return listen
}

func backupOnline(cfg *config.Config, w io.Writer) (int64, error) {
	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	host := localAddr(cfg.Listen)
	// The service's own certificate may not name 127.0.0.1; the admin token
	// still authenticates the request.
	hc, err := cli.HTTPClient("", cfg.TLS.Enabled(), 0)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodGet, scheme+"://"+host+"/v1/backup", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cfg.Auth.AdminToken.Value())
	resp, err := hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("the store is locked by a running hvro, and its API at %s cannot be reached: %w", host, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, fmt.Errorf("hvro answered %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("the copy from %s broke off after %d bytes: %w", host, n, err)
	}
	return n, nil
}
