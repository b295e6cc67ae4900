package config

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReadSecretFile: the CLI's --token-file follows the rules of the
// config's *_file keys (hvro hook and serve must agree on a token file).
func TestReadSecretFile(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		want    string
		wantErr string
	}{
		{"plain with newline", "s3cr3t-1\n", 0o600, "s3cr3t-1", ""},
		{"Notepad: BOM and CRLF", "\ufeffs3cr3t-2\r\n", 0o600, "s3cr3t-2", ""},
		{"empty", "\n", 0o600, "", "is empty"},
		{"two lines", "s3cr3t\nother\n", 0o600, "", "more than one line"},
		{"readable by others", "s3cr3t\n", 0o644, "", "must not be readable by group or others"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.mode != 0o600 && runtime.GOOS == "windows" {
				t.Skip("NTFS ACLs, not mode bits, protect the file")
			}
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tc.content), tc.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tc.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			got, err := ReadSecretFile(path)
			switch {
			case tc.wantErr == "" && (err != nil || got != tc.want):
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("got %q, %v; want an error with %q", got, err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "s3cr3t"):
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
	if _, err := ReadSecretFile(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing file: %v", err)
	}
}
