package cql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxLen is the longest expression ECS accepts, in characters.
const maxLen = 2000

// SyntaxError points at the token where parsing failed.
type SyntaxError struct {
	Pos   int    // byte offset of the bad token in the input
	Token string // the bad token ("" at end of input)
	Msg   string // what was expected, e.g. `expected an operator`
}

func (e *SyntaxError) Error() string {
	if e.Token == "" {
		return fmt.Sprintf("invalid expression at position %d: %s", e.Pos, e.Msg)
	}
	return fmt.Sprintf("invalid expression at position %d near %q: %s", e.Pos, e.Token, e.Msg)
}

// Parse parses an expression. Errors are *SyntaxError. Expressions longer
// than 2,000 characters, ECS's limit for memberOf, are rejected.
func Parse(s string) (Expr, error) {
	if n := utf8.RuneCountInString(s); n > maxLen {
		// Point at the first character over the limit.
		pos, count := 0, 0
		for pos = range s {
			if count == maxLen {
				break
			}
			count++
		}
		return nil, &SyntaxError{Pos: pos, Msg: fmt.Sprintf(
			"expression is %d characters long; the limit is %d", n, maxLen)}
	}
	return parse(s)
}

// parse is Parse without the length limit.
func parse(s string) (Expr, error) {
	p := &parser{lx: lexer{src: s}}
	p.advance()
	if p.tok.kind == tokEOF {
		return nil, p.fail("empty expression; write subject operator [argument], e.g. runningTasksCount == 0")
	}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tokEOF:
		return e, nil
	case tokRParen:
		return nil, p.fail(`")" without a matching "("`)
	}
	return nil, p.fail(`expected "and", "or" or the end of the expression`)
}

type parser struct {
	lx  lexer
	tok token // the current token; lx.pos is just after it
}

func (p *parser) advance() { p.tok = p.lx.next() }

// fail returns a SyntaxError at the current token, or the lexer's own
// message when the current token is illegal.
func (p *parser) fail(msg string) *SyntaxError {
	return failAt(p.tok, msg)
}

func failAt(t token, msg string) *SyntaxError {
	if t.kind == tokIllegal {
		msg = t.msg
	}
	return &SyntaxError{Pos: t.pos, Token: t.text, Msg: msg}
}

func (p *parser) isWord(w string) bool {
	return p.tok.kind == tokWord && strings.EqualFold(p.tok.text, w)
}

func (p *parser) parseOr() (Expr, error) {
	var terms orExpr
	for {
		x, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		if or, ok := x.(orExpr); ok {
			terms = append(terms, or...)
		} else {
			terms = append(terms, x)
		}
		if p.tok.kind != tokOr && !p.isWord("or") {
			break
		}
		p.advance()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) parseAnd() (Expr, error) {
	var terms andExpr
	for {
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		if and, ok := x.(andExpr); ok {
			terms = append(terms, and...)
		} else {
			terms = append(terms, x)
		}
		if p.tok.kind != tokAnd && !p.isWord("and") {
			break
		}
		p.advance()
	}
	if len(terms) == 1 {
		return terms[0], nil
	}
	return terms, nil
}

func (p *parser) parseUnary() (Expr, error) {
	switch {
	case p.tok.kind == tokNot || p.isWord("not"):
		p.advance()
		x, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		return notExpr{x}, nil
	case p.tok.kind == tokLParen:
		open := p.tok
		p.advance()
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tokRParen {
			return nil, p.fail(fmt.Sprintf(`expected "and", "or" or a ")" to close the "(" at position %d`, open.pos))
		}
		p.advance()
		return x, nil
	}
	return p.parsePredicate()
}

const subjectList = "agentConnected, agentVersion, attribute:<name>, ec2InstanceId, registeredAt, runningTasksCount or task:group"

func (p *parser) parsePredicate() (Expr, error) {
	if p.tok.kind != tokWord {
		return nil, p.fail(`expected a subject (` + subjectList + `), "not" or "("`)
	}
	pr := &predicate{}
	if msg := pr.setSubject(p.tok.text); msg != "" {
		return nil, p.fail(msg)
	}
	p.advance()

	opTok := p.tok
	pr.op = lookupOperator(opTok)
	if pr.op == 0 {
		return nil, p.fail("expected an operator: " + opList(allowedOps[pr.subj]))
	}
	if allowedOps[pr.subj]&(1<<pr.op) == 0 {
		return nil, p.fail(fmt.Sprintf("operator %s does not apply to %s; use %s",
			opSymbols[pr.op], subjectNames[pr.subj]+pr.attr, opList(allowedOps[pr.subj])))
	}

	var args []token
	switch pr.op {
	case opExists, opNotExists:
		p.advance()
	case opIn, opNotIn:
		p.advance()
		list, err := p.parseList()
		if err != nil {
			return nil, err
		}
		args = list
		pr.asList = true
	case opMatches, opNotMatches:
		p.tok = p.lx.pattern()
		if p.tok.kind != tokWord && p.tok.kind != tokString {
			return nil, p.fail("expected a regular expression, e.g. t2\\..*")
		}
		args = []token{p.tok}
		p.advance()
	default:
		p.advance()
		if p.tok.kind != tokWord && p.tok.kind != tokString {
			return nil, p.fail("expected a value after " + opTok.text)
		}
		args = []token{p.tok}
		p.advance()
	}
	for _, a := range args {
		pr.args = append(pr.args, a.val)
	}
	if err := pr.bind(args); err != nil {
		return nil, err
	}
	return pr, nil
}

// parseList parses [value, value, ...] starting at the current token.
func (p *parser) parseList() ([]token, error) {
	if p.tok.kind != tokLBracket {
		return nil, p.fail("expected an argument list, e.g. [a, b]")
	}
	p.advance()
	var vals []token
	for {
		if p.tok.kind != tokWord && p.tok.kind != tokString {
			if p.tok.kind == tokRBracket && len(vals) == 0 {
				return nil, p.fail("empty argument list; give at least one value")
			}
			return nil, p.fail("expected a value in the argument list")
		}
		vals = append(vals, p.tok)
		p.advance()
		switch p.tok.kind {
		case tokComma:
			p.advance()
			continue
		case tokRBracket:
			p.advance()
			return vals, nil
		}
		return nil, p.fail(`expected "," or "]" in the argument list`)
	}
}

// setSubject sets the subject from its spelling, or says what is wrong.
func (pr *predicate) setSubject(w string) string {
	if name, ok := strings.CutPrefix(w, "attribute:"); ok {
		if !validAttrName(name) {
			return "invalid attribute name; use 1 to 128 letters, digits, '.', '-', '_', '/' or '\\'"
		}
		pr.subj, pr.attr = subjAttribute, name
		return ""
	}
	for s, name := range subjectNames {
		if s == 0 || subject(s) == subjAttribute {
			continue
		}
		if w == name {
			pr.subj = subject(s)
			return ""
		}
		if strings.EqualFold(w, name) {
			return fmt.Sprintf("unknown subject; subjects are case-sensitive, did you mean %s?", name)
		}
	}
	return "unknown subject; use " + subjectList
}

func validAttrName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == '_' || c == '/' || c == '\\':
		default:
			return false
		}
	}
	return true
}

var opWords = map[string]operator{
	"equals":             opEq,
	"not_equals":         opNe,
	"greater_than":       opGt,
	"greater_than_equal": opGe,
	"less_than":          opLt,
	"less_than_equal":    opLe,
	"exists":             opExists,
	"not_exists":         opNotExists,
	"in":                 opIn,
	"not_in":             opNotIn,
	"matches":            opMatches,
	"not_matches":        opNotMatches,
}

// lookupOperator returns the operator t spells, or 0.
func lookupOperator(t token) operator {
	switch t.kind {
	case tokWord:
		return opWords[strings.ToLower(t.text)]
	case tokOp:
		switch strings.ToLower(t.text) {
		case "==":
			return opEq
		case "!=":
			return opNe
		case ">":
			return opGt
		case ">=":
			return opGe
		case "<":
			return opLt
		case "<=":
			return opLe
		case "!exists":
			return opNotExists
		case "!in":
			return opNotIn
		case "=~":
			return opMatches
		case "!~":
			return opNotMatches
		}
	}
	return 0
}

type opSet uint16

func ops(list ...operator) opSet {
	var s opSet
	for _, o := range list {
		s |= 1 << o
	}
	return s
}

// allowedOps lists the operators each subject takes, as ECS documents
// them; attributes take all, task:group all but the orderings.
var allowedOps = [...]opSet{
	subjAgentConnected:    ops(opEq, opNe, opIn, opNotIn, opMatches, opNotMatches),
	subjAgentVersion:      ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjAttribute:         ops(opEq, opNe, opGt, opGe, opLt, opLe, opExists, opNotExists, opIn, opNotIn, opMatches, opNotMatches),
	subjEC2InstanceID:     ops(opEq, opNe, opIn, opNotIn, opMatches, opNotMatches),
	subjRegisteredAt:      ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjRunningTasksCount: ops(opEq, opNe, opGt, opGe, opLt, opLe),
	subjTaskGroup:         ops(opEq, opNe, opExists, opNotExists, opIn, opNotIn, opMatches, opNotMatches),
}

func opList(s opSet) string {
	var names []string
	for o := opEq; o <= opNotMatches; o++ {
		if s&(1<<o) != 0 {
			names = append(names, opSymbols[o])
		}
	}
	return strings.Join(names, ", ")
}

// bind checks the arguments against the subject and keeps them in the
// form evaluation needs. args are the argument tokens, for error positions.
func (pr *predicate) bind(args []token) error {
	if pr.op == opMatches || pr.op == opNotMatches {
		re, err := compilePattern(args[0].val)
		if err != nil {
			return failAt(args[0], "invalid regular expression: "+err.Error())
		}
		pr.re = re
		return nil
	}
	switch pr.subj {
	case subjAgentConnected:
		for _, a := range args {
			switch strings.ToLower(a.val) {
			case "true":
				pr.bools = append(pr.bools, true)
			case "false":
				pr.bools = append(pr.bools, false)
			default:
				return failAt(a, "agentConnected is true or false")
			}
		}
	case subjAgentVersion:
		if _, _, ok := splitVersion(args[0].val); !ok {
			return failAt(args[0], "expected an agent version, e.g. 1.14.5")
		}
	case subjRegisteredAt:
		r, ok := parseTimeArg(args[0].val)
		if !ok {
			return failAt(args[0], "expected a date or time: 2018-06-18, 2018-06-18T22:28:28, 2018-06-18T22:28:28Z or 2018-06-18T22:28:28+00:00")
		}
		pr.when = r
	case subjRunningTasksCount:
		n, err := strconv.ParseInt(args[0].val, 10, 64)
		if err != nil {
			return failAt(args[0], "expected a whole number of tasks")
		}
		pr.count = n
	case subjAttribute:
		if len(args) == 1 {
			pr.num, pr.isNum = parseNumber(args[0].val)
		}
	}
	return nil
}
