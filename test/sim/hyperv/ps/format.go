package ps

import (
	"fmt"
	"strings"
)

// formatOutput renders what reaches the end of a top-level pipeline, the job
// Out-Default does. Scalars print one per line; objects print as a list or
// table. The layout is simplified (no format.ps1xml views): scripts that need
// machine-readable output use ConvertTo-Json, as hvro's do.
func formatOutput(vs []Value) string {
	var b strings.Builder
	for _, v := range vs {
		formatValue(&b, v)
	}
	return b.String()
}

func formatValue(b *strings.Builder, v Value) {
	switch x := v.(type) {
	case nil, voidValue:
	case []Value:
		for _, e := range x {
			formatValue(b, e)
		}
	case *Hashtable:
		b.WriteString("\r\nName                           Value\r\n----                           -----\r\n")
		for _, k := range x.Keys() {
			val, _ := x.Get(k)
			fmt.Fprintf(b, "%-30s %s\r\n", k, ToString(val))
		}
		b.WriteString("\r\n")
	case *Object:
		if len(x.Props) == 0 {
			b.WriteString(ToString(x) + "\r\n")
			return
		}
		width := 0
		for _, p := range x.Props {
			width = max(width, len(p.Name))
		}
		b.WriteString("\r\n")
		for _, p := range x.Props {
			fmt.Fprintf(b, "%-*s : %s\r\n", width, p.Name, ToString(p.Value))
		}
		b.WriteString("\r\n")
	default:
		b.WriteString(ToString(v))
		b.WriteString("\r\n")
	}
}
