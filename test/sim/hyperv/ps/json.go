package ps

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ToJSON serialises like Windows PowerShell 5.1's ConvertTo-Json: enums as
// integers, DateTime as "\/Date(ms)\/", members deeper than depth as their
// ToString(), and the HTML-sensitive characters escaped as \uXXXX.
func ToJSON(v Value, depth int, compress bool) string {
	var b strings.Builder
	writeJSON(&b, v, 0, depth)
	if compress {
		return b.String()
	}
	return prettyJSON(b.String())
}

func writeJSON(b *strings.Builder, v Value, level, depth int) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case float64:
		b.WriteString(jsonDouble(x))
	case string:
		writeJSONString(b, x)
	case Enum:
		b.WriteString(strconv.FormatInt(x.Value, 10))
	case Guid:
		writeJSONString(b, x.String())
	case time.Time:
		fmt.Fprintf(b, `"\/Date(%d)\/"`, x.UnixMilli())
	case []Value:
		if level > depth {
			writeJSONString(b, ToString(x))
			return
		}
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e, level+1, depth)
		}
		b.WriteByte(']')
	case *Hashtable:
		if level > depth {
			writeJSONString(b, ToString(x))
			return
		}
		b.WriteByte('{')
		for i, k := range x.Keys() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			val, _ := x.Get(k)
			writeJSON(b, val, level+1, depth)
		}
		b.WriteByte('}')
	case *Object:
		if level > depth {
			writeJSONString(b, ToString(x))
			return
		}
		b.WriteByte('{')
		for i, p := range x.Props {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, p.Name)
			b.WriteByte(':')
			writeJSON(b, p.Value, level+1, depth)
		}
		b.WriteByte('}')
	case *ErrorRecord:
		writeJSONString(b, x.Exception.Message)
	default:
		writeJSONString(b, ToString(v))
	}
}

func jsonDouble(f float64) string {
	if f == float64(int64(f)) && f < 1e15 && f > -1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'G', 17, 64)
}

func writeJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case '\f':
			b.WriteString(`\f`)
		case '<', '>', '&', '\'':
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			if r < 0x20 {
				fmt.Fprintf(b, `\u%04x`, r)
				continue
			}
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// prettyJSON re-indents compact JSON the way 5.1 does: four spaces per level
// and two spaces after each colon.
func prettyJSON(s string) string {
	var b strings.Builder
	indent := 0
	inStr := false
	nl := func() {
		b.WriteString("\r\n")
		b.WriteString(strings.Repeat(" ", indent*4))
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if inStr {
			b.WriteByte(c)
			if c == '\\' && i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
			b.WriteByte(c)
		case '{', '[':
			if i+1 < len(s) && (s[i+1] == '}' || s[i+1] == ']') {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
				i++
				continue
			}
			b.WriteByte(c)
			indent++
			nl()
		case '}', ']':
			indent--
			nl()
			b.WriteByte(c)
		case ',':
			b.WriteByte(c)
			nl()
		case ':':
			b.WriteString(":  ")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
