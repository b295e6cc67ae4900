package hyperv

import (
	"os"
	"strings"
	"testing"
)

// TestErrorCatalogueMatchesStates keeps STATES.md's error table and the
// emulator's catalogue one list: every error has a row, every row names
// catalogued errors, and the FQID prefix and the source (real or
// synthetic) agree, so a reader of STATES.md knows which texts to trust.
func TestErrorCatalogueMatchesStates(t *testing.T) {
	doc, err := os.ReadFile("STATES.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "## Errors")
	if !ok {
		t.Fatal(`STATES.md has no "## Errors" section`)
	}
	seen := map[string]bool{}
	rows := 0
	for _, line := range strings.Split(table, "\n")[3:] {
		if !strings.HasPrefix(line, "| ") {
			break
		}
		cells := strings.Split(strings.Trim(line, "| "), " | ")
		if len(cells) != 4 {
			t.Fatalf("row %q: want 4 cells", line)
		}
		rows++
		source, _, _ := strings.Cut(cells[3], " ")
		for _, name := range strings.Split(cells[0], " / ") {
			k, ok := hvErrors[name]
			switch {
			case !ok:
				t.Errorf("STATES.md lists %q, which the catalogue does not have", name)
				continue
			case k.errorID != cells[2]:
				t.Errorf("%s: STATES.md says FQID %s, the catalogue %s", name, cells[2], k.errorID)
			case k.source != source:
				t.Errorf("%s: STATES.md says %s, the catalogue %s", name, source, k.source)
			}
			seen[name] = true
		}
	}
	if rows == 0 {
		t.Fatal("no rows read from the error table")
	}
	for name := range hvErrors {
		if !seen[name] {
			t.Errorf("catalogue error %q has no row in STATES.md", name)
		}
	}
}
