package hostname

import "testing"

func TestShort(t *testing.T) {
	for in, want := range map[string]string{
		"NODE1.lab.local": "node1", "node1": "node1", "node1.": "node1", " node1 ": "node1", "": "",
		"192.0.2.1": "192.0.2.1", "[2001:db8::1]": "[2001:db8::1]",
	} {
		if got := Short(in); got != want {
			t.Errorf("Short(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSame(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"node1", "node1", true},
		{"node1", "NODE1", true},
		{"node1", "node1.lab.local", true},
		{"Node1.corp", "node1.lab.local", true},
		{"node1.lab.local.", "node1", true},
		{"node1", "node2", false},
		{"192.0.2.10", "192.0.2.11", false}, // addresses are not cut at the first dot
		{"192.0.2.10", "192.0.2.10", true},
		{"", "", false},
		{"node1", "", false},
	}
	for _, tc := range tests {
		if got := Same(tc.a, tc.b); got != tc.want {
			t.Errorf("Same(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
