package cql

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// compilePattern compiles a Java regular expression as ECS applies it:
// translated to Go syntax and anchored at both ends, like Java's
// String.matches.
func compilePattern(java string) (*regexp.Regexp, error) {
	expr, err := translateJava(java)
	if err != nil {
		return nil, err
	}
	// Check the pattern alone, so errors do not mention the anchors and a
	// pattern such as a)|(b cannot escape them.
	if _, err := syntax.Parse(expr, syntax.Perl); err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s: `%s`", se.Code, se.Expr)
		}
		return nil, err
	}
	return regexp.Compile(`\A(?:` + expr + `)\z`)
}

// posixClasses maps Java's \p{Name} POSIX classes to Go's [:name:].
var posixClasses = map[string]string{
	"Lower": "lower", "Upper": "upper", "ASCII": "ascii", "Alpha": "alpha",
	"Digit": "digit", "Alnum": "alnum", "Punct": "punct", "Graph": "graph",
	"Print": "print", "Blank": "blank", "Cntrl": "cntrl", "XDigit": "xdigit",
	"Space": "space",
}

// Java's \h and \v (since Java 8), as class contents.
const (
	horizSpace = `\t \x{a0}\x{1680}\x{180e}\x{2000}-\x{200a}\x{202f}\x{205f}\x{3000}`
	vertSpace  = `\n\x{b}\f\r\x{85}\x{2028}\x{2029}`
)

// translateJava rewrites a java.util.regex pattern in Go's RE2 syntax.
// Constructs Go has under another spelling are translated; constructs RE2
// cannot express are errors saying so. Anything else is passed through
// for Go to check.
func translateJava(p string) (string, error) {
	t := &javaTranslator{src: p}
	if err := t.run(); err != nil {
		return "", err
	}
	return t.out.String(), nil
}

type javaTranslator struct {
	src     string
	i       int
	out     strings.Builder
	inClass bool
}

func (t *javaTranslator) run() error {
	for t.i < len(t.src) {
		c := t.src[t.i]
		if t.inClass {
			if err := t.classChar(c); err != nil {
				return err
			}
			continue
		}
		switch c {
		case '\\':
			if err := t.escape(); err != nil {
				return err
			}
		case '[':
			t.out.WriteByte('[')
			t.i++
			if t.i < len(t.src) && t.src[t.i] == '^' {
				t.out.WriteByte('^')
				t.i++
			}
			if t.i < len(t.src) && t.src[t.i] == ']' {
				t.out.WriteString(`\]`)
				t.i++
			}
			t.inClass = true
		case '(':
			if err := t.group(); err != nil {
				return err
			}
		case '*', '+', '?':
			t.out.WriteByte(c)
			t.i++
			if err := t.quantifierSuffix(); err != nil {
				return err
			}
		case '{':
			n := repeatLen(t.src[t.i:])
			if n == 0 {
				return fmt.Errorf(`"{" at offset %d does not start a repetition such as {2,5}; write \{ for a literal brace`, t.i)
			}
			t.out.WriteString(t.src[t.i : t.i+n])
			t.i += n
			if err := t.quantifierSuffix(); err != nil {
				return err
			}
		default:
			t.copyRune()
		}
	}
	return nil
}

func (t *javaTranslator) copyRune() {
	_, w := utf8.DecodeRuneInString(t.src[t.i:])
	t.out.WriteString(t.src[t.i : t.i+w])
	t.i += w
}

// classChar handles one element inside a character class.
func (t *javaTranslator) classChar(c byte) error {
	switch {
	case c == ']':
		t.out.WriteByte(']')
		t.i++
		t.inClass = false
	case c == '[':
		return errors.New("nested character classes and class unions such as [a-d[m-p]] are not supported; list the ranges in one class, e.g. [a-dm-p]")
	case strings.HasPrefix(t.src[t.i:], "&&"):
		return errors.New("character class intersection (&&) is not supported; write the resulting class out")
	case c == '\\':
		return t.escape()
	default:
		t.copyRune()
	}
	return nil
}

// quantifierSuffix follows a quantifier: a lazy ? is kept, a possessive
// + is rejected.
func (t *javaTranslator) quantifierSuffix() error {
	if t.i >= len(t.src) {
		return nil
	}
	switch t.src[t.i] {
	case '?':
		t.out.WriteByte('?')
		t.i++
	case '+':
		return errors.New("possessive quantifiers such as a*+ are not supported; drop the trailing +")
	}
	return nil
}

// repeatLen returns the length of the {n}, {n,} or {n,m} at the start of
// s, or 0.
func repeatLen(s string) int {
	i := 1
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	if i == start {
		return 0
	}
	if i < len(s) && s[i] == ',' {
		i++
		for i < len(s) && isDigit(s[i]) {
			i++
		}
	}
	if i < len(s) && s[i] == '}' {
		return i + 1
	}
	return 0
}

// group handles "(" and the constructs starting with "(?".
func (t *javaTranslator) group() error {
	rest := t.src[t.i:]
	switch {
	case !strings.HasPrefix(rest, "(?"):
		t.out.WriteByte('(')
		t.i++
		return nil
	case strings.HasPrefix(rest, "(?="), strings.HasPrefix(rest, "(?!"):
		return errors.New("lookahead (?= and (?! is not supported")
	case strings.HasPrefix(rest, "(?<="), strings.HasPrefix(rest, "(?<!"):
		return errors.New("lookbehind (?<= and (?<! is not supported")
	case strings.HasPrefix(rest, "(?>"):
		return errors.New("atomic groups (?> are not supported; use a plain group (?:")
	case strings.HasPrefix(rest, "(?<"), strings.HasPrefix(rest, "(?P<"), strings.HasPrefix(rest, "(?:"):
		// Named and non-capturing groups: Go spells them the same.
		n := len("(?:")
		if rest[2] != ':' {
			n = strings.IndexByte(rest, '>') + 1
			if n == 0 {
				n = len(rest)
			}
		}
		t.out.WriteString(rest[:n])
		t.i += n
		return nil
	}
	// Flags: (?idmsuxU-idmsuxU) or (?flags:X).
	j := 2
	for j < len(rest) && (isASCIILetter(rest[j]) || rest[j] == '-') {
		j++
	}
	if j == len(rest) || (rest[j] != ')' && rest[j] != ':') {
		// Not a flag group; Go will report it.
		t.out.WriteString("(?")
		t.i += 2
		return nil
	}
	if !strings.ContainsFunc(rest[2:j], func(r rune) bool { return r != '-' }) {
		return errors.New("empty flag group (?)")
	}
	on, off, neg := "", "", false
	for _, f := range []byte(rest[2:j]) {
		switch f {
		case '-':
			if neg {
				return errors.New("flag group with two '-'")
			}
			neg = true
			continue
		case 'i', 'm', 's':
		case 'd', 'u':
			// UNIX_LINES and UNICODE_CASE: Go's line handling and case
			// folding already cover the values ECS compares.
			continue
		case 'x':
			return errors.New("comments mode (?x) is not supported; remove the white space and comments")
		case 'U':
			return errors.New("flag U (UNICODE_CHARACTER_CLASS) is not supported; use \\p{L} and similar classes")
		default:
			return fmt.Errorf("unknown flag %q", f)
		}
		if neg {
			off += string(f)
		} else {
			on += string(f)
		}
	}
	flags := on
	if off != "" {
		flags += "-" + off
	}
	switch {
	case rest[j] == ':':
		t.out.WriteString("(?" + flags + ":")
	case flags != "":
		t.out.WriteString("(?" + flags + ")")
	}
	t.i += j + 1
	return nil
}

func isASCIILetter(c byte) bool { return 'A' <= c&^0x20 && c&^0x20 <= 'Z' }

// escape handles the escape at t.i, inside or outside a class.
func (t *javaTranslator) escape() error {
	if t.i+1 >= len(t.src) {
		return errors.New("trailing backslash; write \\\\ for a literal backslash, and quote a pattern that contains spaces")
	}
	c := t.src[t.i+1]
	switch c {
	case 'Q':
		// Quote up to \E: Go has \Q too, but not inside classes.
		rest := t.src[t.i+2:]
		lit, _, found := strings.Cut(rest, `\E`)
		quoted := regexp.QuoteMeta(lit)
		if t.inClass {
			quoted = strings.ReplaceAll(quoted, "-", `\-`)
		}
		t.out.WriteString(quoted)
		t.i += 2 + len(lit)
		if found {
			t.i += 2
		}
		return nil
	case 'E':
		t.i += 2 // Java ignores a \E without \Q
		return nil
	case '1', '2', '3', '4', '5', '6', '7', '8', '9', 'k':
		return errors.New("backreferences such as \\1 are not supported")
	case '0':
		return t.octal()
	case 'e':
		t.out.WriteString(`\x{1b}`)
		t.i += 2
		return nil
	case 'c':
		if t.i+2 >= len(t.src) || t.src[t.i+2] >= utf8.RuneSelf {
			return errors.New("\\c must be followed by a control character letter, e.g. \\cM")
		}
		fmt.Fprintf(&t.out, `\x{%x}`, t.src[t.i+2]^64)
		t.i += 3
		return nil
	case 'u':
		return t.unicodeEscape()
	case 'x':
		// \xhh and \x{h...} are the same in Go; copy them whole so that
		// the braces are not read as a repetition.
		n := 4
		if strings.HasPrefix(t.src[t.i:], `\x{`) {
			if k := strings.IndexByte(t.src[t.i:], '}'); k > 0 {
				n = k + 1
			} else {
				n = len(t.src) - t.i
			}
		}
		n = min(n, len(t.src)-t.i)
		t.out.WriteString(t.src[t.i : t.i+n])
		t.i += n
		return nil
	case 'p', 'P':
		return t.property(c == 'P')
	case 'h', 'v':
		set := horizSpace
		if c == 'v' {
			set = vertSpace
		}
		if t.inClass {
			t.out.WriteString(set)
		} else {
			t.out.WriteString("[" + set + "]")
		}
		t.i += 2
		return nil
	case 'H', 'V':
		if t.inClass {
			return fmt.Errorf("\\%c inside a character class is not supported", c)
		}
		set := horizSpace
		if c == 'V' {
			set = vertSpace
		}
		t.out.WriteString("[^" + set + "]")
		t.i += 2
		return nil
	case 'Z':
		// End of input, or before a final line terminator; the values ECS
		// compares hold no line terminators.
		t.out.WriteString(`\z`)
		t.i += 2
		return nil
	case 'G', 'R', 'X', 'N':
		return fmt.Errorf("\\%c is not supported", c)
	case 'b':
		if strings.HasPrefix(t.src[t.i:], `\b{`) {
			return errors.New("\\b{g} is not supported")
		}
	}
	// Everything else (\d, \w, \s, \b, \A, \z, \t, \., ...) Go spells the
	// same, or rejects itself.
	t.out.WriteByte('\\')
	t.i++
	t.copyRune()
	return nil
}

// octal handles Java's \0n, \0nn and \0mnn (m <= 3).
func (t *javaTranslator) octal() error {
	j := t.i + 2
	maxDigits := 2
	if j < len(t.src) && '0' <= t.src[j] && t.src[j] <= '3' {
		maxDigits = 3
	}
	start := j
	for j < len(t.src) && j-start < maxDigits && '0' <= t.src[j] && t.src[j] <= '7' {
		j++
	}
	if j == start {
		return errors.New("\\0 must be followed by octal digits, e.g. \\011")
	}
	v, _ := strconv.ParseUint(t.src[start:j], 8, 32)
	fmt.Fprintf(&t.out, `\x{%x}`, v)
	t.i = j
	return nil
}

// unicodeEscape handles \uXXXX, joining surrogate pairs.
func (t *javaTranslator) unicodeEscape() error {
	hex4 := func(at int) (rune, bool) {
		if at+6 > len(t.src) || t.src[at:at+2] != `\u` {
			return 0, false
		}
		v, err := strconv.ParseUint(t.src[at+2:at+6], 16, 32)
		return rune(v), err == nil
	}
	r, ok := hex4(t.i)
	if !ok {
		return errors.New("\\u must be followed by four hexadecimal digits")
	}
	n := 6
	if utf16.IsSurrogate(r) {
		lo, ok := hex4(t.i + 6)
		r = utf16.DecodeRune(r, lo)
		if !ok || r == unicode.ReplacementChar {
			return errors.New("\\u escape is half of a surrogate pair")
		}
		n = 12
	}
	fmt.Fprintf(&t.out, `\x{%x}`, r)
	t.i += n
	return nil
}

// property handles \p{...}, \P{...}, \pL and \PL.
func (t *javaTranslator) property(negated bool) error {
	rest := t.src[t.i+2:]
	var name string
	n := 0
	switch {
	case strings.HasPrefix(rest, "{"):
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return errors.New("unclosed \\p{")
		}
		name, n = rest[1:end], end+1
	case rest != "":
		_, w := utf8.DecodeRuneInString(rest)
		name, n = rest[:w], w
	default:
		return errors.New("\\p must be followed by a property name, e.g. \\p{L}")
	}
	t.i += 2 + n

	if posix, ok := posixClasses[name]; ok {
		switch {
		case t.inClass && negated:
			t.out.WriteString("[:^" + posix + ":]")
		case t.inClass:
			t.out.WriteString("[:" + posix + ":]")
		case negated:
			t.out.WriteString("[^[:" + posix + ":]]")
		default:
			t.out.WriteString("[[:" + posix + ":]]")
		}
		return nil
	}
	goName := name
	for _, prefix := range []string{"general_category=", "gc=", "script=", "sc=", "Is"} {
		if s, ok := strings.CutPrefix(goName, prefix); ok {
			goName = s
			break
		}
	}
	_, isCat := unicode.Categories[goName]
	_, isScript := unicode.Scripts[goName]
	if !isCat && !isScript {
		if strings.HasPrefix(name, "In") || strings.HasPrefix(name, "blk=") || strings.HasPrefix(name, "block=") {
			return fmt.Errorf("blocks such as \\p{%s} are not supported; use a script, e.g. \\p{Greek}", name)
		}
		return fmt.Errorf("character class \\p{%s} is not supported; use a Unicode category or script, e.g. \\p{Lu}", name)
	}
	if negated {
		t.out.WriteString(`\P{` + goName + `}`)
	} else {
		t.out.WriteString(`\p{` + goName + `}`)
	}
	return nil
}
