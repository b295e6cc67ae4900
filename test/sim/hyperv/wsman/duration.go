package wsman

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

var errDuration = errors.New("not a positive xs:duration")

// parseDuration parses the xs:duration forms WS-Management clients send for
// OperationTimeout: PT60S, PT20.000S, PT1M30S, P0DT0H1M0S. Years and months
// have no fixed length and are refused, as are negative and zero durations.
func parseDuration(s string) (time.Duration, error) {
	d, err := parseDurationOrZero(s)
	if err != nil || d <= 0 {
		return 0, errDuration
	}
	return d, nil
}

// parseDurationOrZero is parseDuration that also takes a zero duration
// (PT0S), which is a valid xs:duration for a Create's rsp:IdleTimeOut.
func parseDurationOrZero(s string) (time.Duration, error) {
	if !strings.HasPrefix(s, "P") || len(s) < 3 {
		return 0, errDuration
	}
	rest := s[1:]
	var total time.Duration
	inTime := false
	seen := ""
	for len(rest) > 0 {
		if rest[0] == 'T' {
			if inTime || len(rest) == 1 {
				return 0, errDuration
			}
			inTime = true
			rest = rest[1:]
			continue
		}
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 || i == len(rest) {
			return 0, errDuration
		}
		num, unit := rest[:i], rest[i]
		rest = rest[i+1:]
		key := string(unit)
		if inTime {
			key = "T" + key
		}
		if strings.Contains(seen, key+",") {
			return 0, errDuration
		}
		seen += key + ","
		var scale time.Duration
		switch {
		case !inTime && unit == 'D':
			scale = 24 * time.Hour
		case inTime && unit == 'H':
			scale = time.Hour
		case inTime && unit == 'M':
			scale = time.Minute
		case inTime && unit == 'S':
			scale = time.Second
		default:
			return 0, errDuration
		}
		if strings.Contains(num, ".") && unit != 'S' {
			return 0, errDuration
		}
		f, err := strconv.ParseFloat(num, 64)
		if err != nil || f < 0 || f > 1e7 {
			return 0, errDuration
		}
		total += time.Duration(f * float64(scale))
	}
	return total, nil
}
