package cql

import (
	"cmp"
	"errors"
	"strconv"
	"strings"
	"time"
)

// parseNumber reads a decimal number: an optional sign, digits with an
// optional fraction, and an optional exponent. Hexadecimal, Inf and NaN,
// which strconv would take, are not numbers here.
func parseNumber(s string) (float64, bool) {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			exp++
		}
		if exp == 0 {
			return 0, false
		}
	}
	if i != len(s) {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, false
	}
	return f, true // out of range is ±Inf or 0, which still compare
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func allDigits(s string) bool {
	for i := range len(s) {
		if !isDigit(s[i]) {
			return false
		}
	}
	return s != ""
}

// splitVersion splits v1.14.5-rc.1+build into its release, 1.14.5, and
// pre-release, rc.1. The release is dot-separated numbers; a leading v
// and the build metadata are dropped.
func splitVersion(s string) (release, pre string, ok bool) {
	s = strings.TrimPrefix(s, "v")
	s, build, hasBuild := strings.Cut(s, "+")
	release, pre, hasPre := strings.Cut(s, "-")
	if hasPre && pre == "" || hasBuild && build == "" {
		return "", "", false
	}
	for part := range strings.SplitSeq(release, ".") {
		if !allDigits(part) {
			return "", "", false
		}
	}
	return release, pre, true
}

// compareVersions compares two versions; ok is false when either is not
// one. Missing release components count as 0, and a pre-release sorts
// before its release.
func compareVersions(a, b string) (c int, ok bool) {
	ar, ap, ok := splitVersion(a)
	if !ok {
		return 0, false
	}
	br, bp, ok := splitVersion(b)
	if !ok {
		return 0, false
	}
	for ar != "" || br != "" {
		var x, y string
		x, ar, _ = strings.Cut(ar, ".")
		y, br, _ = strings.Cut(br, ".")
		if c := compareDigits(x, y); c != 0 {
			return c, true
		}
	}
	switch {
	case ap == bp:
		return 0, true
	case ap == "":
		return 1, true
	case bp == "":
		return -1, true
	}
	return comparePre(ap, bp), true
}

// compareDigits compares two strings of decimal digits as numbers of any
// size; "" is 0.
func compareDigits(x, y string) int {
	x = strings.TrimLeft(x, "0")
	y = strings.TrimLeft(y, "0")
	if len(x) != len(y) {
		return cmp.Compare(len(x), len(y))
	}
	return strings.Compare(x, y)
}

// comparePre orders pre-releases as semantic versioning does: identifier
// by identifier, numbers numerically and before words, and a shorter list
// before a longer one it prefixes.
func comparePre(a, b string) int {
	for a != "" && b != "" {
		var x, y string
		x, a, _ = strings.Cut(a, ".")
		y, b, _ = strings.Cut(b, ".")
		xn, yn := allDigits(x), allDigits(y)
		var c int
		switch {
		case xn && yn:
			c = compareDigits(x, y)
		case xn:
			c = -1
		case yn:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// timeRange is the interval [lo, hi) a registeredAt argument stands for.
type timeRange struct{ lo, hi time.Time }

// parseTimeArg reads a registeredAt argument in one of the forms ECS
// documents: a date, or a time with or without a zone (UTC when none),
// optionally with fractional seconds. The range covers the precision
// given: a whole day for a date, a second for 22:28:28, a millisecond for
// 22:28:28.123.
func parseTimeArg(s string) (timeRange, bool) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return timeRange{t, t.AddDate(0, 0, 1)}, true
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05"} {
		t, err := time.Parse(layout, s)
		if err != nil {
			continue
		}
		unit := time.Second
		if _, frac, ok := strings.Cut(s, "."); ok {
			for i := 0; i < len(frac) && isDigit(frac[i]) && unit > time.Nanosecond; i++ {
				unit /= 10
			}
		}
		return timeRange{t, t.Add(unit)}, true
	}
	return timeRange{}, false
}
