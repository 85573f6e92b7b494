package cql

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF      tokenKind = iota
	tokWord               // bare word: a subject, a keyword or a value
	tokString             // quoted string; val holds the text between the quotes
	tokLParen             // (
	tokRParen             // )
	tokLBracket           // [
	tokRBracket           // ]
	tokComma              // ,
	tokOp                 // symbolic operator: == != > >= < <= =~ !~ !exists !in
	tokAnd                // &&
	tokOr                 // ||
	tokNot                // !
	tokIllegal            // something no token starts with; msg says why
)

type token struct {
	kind tokenKind
	pos  int    // byte offset in the source
	text string // the source text of the token
	val  string // the value: text without quotes for tokString, else text
	msg  string // for tokIllegal, what is wrong
}

// delimiters end a bare word.
const delimiters = "()[],'\"=!<>&|~"

// isWordRune reports whether r may appear in a bare word.
func isWordRune(r rune) bool {
	return !unicode.IsSpace(r) && !strings.ContainsRune(delimiters, r)
}

// scanWord returns the end of the bare word starting at i.
func scanWord(s string, i int) int {
	for i < len(s) {
		r, w := utf8.DecodeRuneInString(s[i:])
		if !isWordRune(r) {
			break
		}
		i += w
	}
	return i
}

// lexer splits an expression into tokens on demand. It has two modes,
// chosen by the parser: next for everything but regular expressions, and
// pattern for the argument of =~ and !~.
type lexer struct {
	src string
	pos int
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.src) {
		r, w := utf8.DecodeRuneInString(l.src[l.pos:])
		if !unicode.IsSpace(r) {
			return
		}
		l.pos += w
	}
}

func (l *lexer) emit(kind tokenKind, start, end int) token {
	l.pos = end
	text := l.src[start:end]
	return token{kind: kind, pos: start, text: text, val: text}
}

func (l *lexer) illegal(start, end int, msg string) token {
	t := l.emit(tokIllegal, start, end)
	t.msg = msg
	return t
}

// next returns the next token.
func (l *lexer) next() token {
	l.skipSpace()
	s, i := l.src, l.pos
	if i >= len(s) {
		return token{kind: tokEOF, pos: i}
	}
	at := func(j int, c byte) bool { return j < len(s) && s[j] == c }
	switch s[i] {
	case '(':
		return l.emit(tokLParen, i, i+1)
	case ')':
		return l.emit(tokRParen, i, i+1)
	case '[':
		return l.emit(tokLBracket, i, i+1)
	case ']':
		return l.emit(tokRBracket, i, i+1)
	case ',':
		return l.emit(tokComma, i, i+1)
	case '\'', '"':
		return l.quoted()
	case '&':
		if at(i+1, '&') {
			return l.emit(tokAnd, i, i+2)
		}
		return l.illegal(i, i+1, `a single "&" is not an operator; write "&&" or "and"`)
	case '|':
		if at(i+1, '|') {
			return l.emit(tokOr, i, i+2)
		}
		return l.illegal(i, i+1, `a single "|" is not an operator; write "||" or "or"`)
	case '=':
		if at(i+1, '=') || at(i+1, '~') {
			return l.emit(tokOp, i, i+2)
		}
		return l.illegal(i, i+1, `a single "=" is not an operator; write "==" or "equals"`)
	case '<', '>':
		if at(i+1, '=') {
			return l.emit(tokOp, i, i+2)
		}
		return l.emit(tokOp, i, i+1)
	case '!':
		if at(i+1, '=') || at(i+1, '~') {
			return l.emit(tokOp, i, i+2)
		}
		end := scanWord(s, i+1)
		if w := s[i+1 : end]; strings.EqualFold(w, "exists") || strings.EqualFold(w, "in") {
			return l.emit(tokOp, i, end)
		}
		return l.emit(tokNot, i, i+1)
	case '~':
		return l.illegal(i, i+1, `"~" is not an operator; write "=~" or "!~"`)
	}
	return l.emit(tokWord, i, scanWord(s, i))
}

// quoted scans a string in single or double quotes starting at l.pos.
func (l *lexer) quoted() token {
	start := l.pos
	q := l.src[start]
	n := strings.IndexByte(l.src[start+1:], q)
	if n < 0 {
		return l.illegal(start, len(l.src), "unterminated string; close it with "+string(q))
	}
	t := l.emit(tokString, start, start+1+n+1)
	t.val = l.src[start+1 : start+1+n]
	return t
}

// pattern returns the next token as the argument of =~ or !~: a quoted
// string or a bare regular expression. Where no pattern starts it falls
// back to next, so the parser sees what is there instead.
func (l *lexer) pattern() token {
	l.skipSpace()
	if l.pos >= len(l.src) {
		return l.next()
	}
	if c := l.src[l.pos]; c == '\'' || c == '"' {
		return l.quoted()
	}
	end := scanPattern(l.src, l.pos)
	if end == l.pos {
		return l.next()
	}
	return l.emit(tokWord, l.pos, end)
}

// scanPattern returns the end of the bare regular expression starting at
// i. It stops at white space, a quote, a ")" closing a parenthesis opened
// before i, and a && or || outside parentheses, so a=~t2.*&&b==c splits as
// it reads. Escapes, \Q...\E quotes and character classes are skipped as
// units, so \), \Q)\E and [)] do not count as parentheses.
func scanPattern(s string, i int) int {
	stop := func(j int) bool {
		r, _ := utf8.DecodeRuneInString(s[j:])
		return unicode.IsSpace(r) || r == '\'' || r == '"'
	}
	// escape skips the escape at j (s[j] == '\\') and returns its end.
	escape := func(j int) int {
		if j+1 >= len(s) || stop(j+1) {
			return j + 1
		}
		if s[j+1] == 'Q' {
			j += 2
			for j < len(s) && !stop(j) {
				if strings.HasPrefix(s[j:], `\E`) {
					return j + 2
				}
				_, w := utf8.DecodeRuneInString(s[j:])
				j += w
			}
			return j
		}
		_, w := utf8.DecodeRuneInString(s[j+1:])
		return j + 1 + w
	}
	depth := 0
	for i < len(s) && !stop(i) {
		switch s[i] {
		case '\\':
			i = escape(i)
		case '[':
			i++
			if i < len(s) && s[i] == '^' {
				i++
			}
			if i < len(s) && s[i] == ']' {
				i++
			}
			for i < len(s) && !stop(i) && s[i] != ']' {
				if s[i] == '\\' {
					i = escape(i)
					continue
				}
				_, w := utf8.DecodeRuneInString(s[i:])
				i += w
			}
			if i < len(s) && s[i] == ']' {
				i++
			}
		case '(':
			depth++
			i++
		case ')':
			if depth == 0 {
				return i
			}
			depth--
			i++
		case '&', '|':
			if depth == 0 && i+1 < len(s) && s[i+1] == s[i] {
				return i
			}
			i++
		default:
			_, w := utf8.DecodeRuneInString(s[i:])
			i += w
		}
	}
	return i
}
