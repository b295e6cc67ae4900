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

// prettyJSON re-indents compact JSON the way 5.1 does: two spaces after
// each colon, and the members of an object or array indented four columns
// past the column of its opening bracket (so nested values drift right).
func prettyJSON(s string) string {
	var b strings.Builder
	col := 0
	var bases []int
	write := func(str string) {
		b.WriteString(str)
		if i := strings.LastIndexByte(str, '\n'); i >= 0 {
			col = len(str) - i - 1
		} else {
			col += len(str)
		}
	}
	nl := func(indent int) { write("\r\n" + strings.Repeat(" ", indent)) }
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			write(s[i : j+1])
			i = j
		case '{', '[':
			if i+1 < len(s) && (s[i+1] == '}' || s[i+1] == ']') {
				write(s[i : i+2])
				i++
				continue
			}
			bases = append(bases, col)
			write(string(c))
			nl(bases[len(bases)-1] + 4)
		case '}', ']':
			base := bases[len(bases)-1]
			bases = bases[:len(bases)-1]
			nl(base)
			write(string(c))
		case ',':
			write(",")
			nl(bases[len(bases)-1] + 4)
		case ':':
			write(":  ")
		default:
			write(string(c))
		}
	}
	return b.String()
}
