package awsproto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Credentials looks up the secret key of an access key id.
type Credentials interface {
	SecretKey(accessKeyID string) (secret string, ok bool)
}

// StaticCredentials is a Credentials backed by a map from access key id to secret.
type StaticCredentials map[string]string

// SecretKey returns the secret of accessKeyID.
func (c StaticCredentials) SecretKey(accessKeyID string) (string, bool) {
	s, ok := c[accessKeyID]
	return s, ok
}

// Verifier checks SigV4-signed requests.
//
// The host that was signed is taken from r.Host (r.URL.Host when r.Host is
// empty), port included, exactly as the client sent it. Other signed headers
// are read with http.Header.Values, that is under their canonical MIME key,
// which is how net/http stores headers it received.
//
// A Verifier is safe for concurrent use and must not be copied after its
// first use: it caches derived signing keys.
type Verifier struct {
	Credentials Credentials
	MaxSkew     time.Duration    // allowed clock difference; 0 means 15 minutes
	Now         func() time.Time // nil means time.Now

	keys signingKeyCache
}

// Identity is who signed a request and for what scope.
type Identity struct {
	AccessKeyID string
	Region      string
	Service     string
	SignedAt    time.Time
}

const (
	sigAlgorithm      = "AWS4-HMAC-SHA256"
	sigTerminator     = "aws4_request"
	amzDateLayout     = "20060102T150405Z"
	scopeDateLayout   = "20060102"
	defaultMaxSkew    = 15 * time.Minute
	maxPresignExpires = 7 * 24 * 60 * 60 // one week, in seconds
	unsignedPayload   = "UNSIGNED-PAYLOAD"

	// Longest access key id, region and service name a credential scope may
	// carry.
	maxAccessKeyIDLen = 128
	maxScopeNameLen   = 64
)

// Query parameters of a presigned request.
const (
	paramAlgorithm     = "X-Amz-Algorithm"
	paramCredential    = "X-Amz-Credential"
	paramDate          = "X-Amz-Date"
	paramExpires       = "X-Amz-Expires"
	paramSignedHeaders = "X-Amz-SignedHeaders"
	paramSignature     = "X-Amz-Signature"
	paramSecurityToken = "X-Amz-Security-Token"
)

// Error codes returned by Verify.
const (
	codeIncompleteSignature = "IncompleteSignatureException"
	codeInvalidSignature    = "InvalidSignatureException"
	codeMissingAuthToken    = "MissingAuthenticationTokenException"
	codeUnrecognizedClient  = "UnrecognizedClientException"
)

const (
	msgSignatureMismatch = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
	msgInvalidToken        = "The security token included in the request is invalid."
	msgContentHashMismatch = "The provided 'x-amz-content-sha256' header does not match what was computed; " +
		"send the lower-case hex SHA-256 of the request body, or leave the header out."
)

func incompleteSignature(msg string) *Error { return ClientError(codeIncompleteSignature, msg) }

func invalidSignature(msg string) *Error {
	return &Error{Status: http.StatusForbidden, Code: codeInvalidSignature, Message: msg}
}

func unrecognizedClient() *Error {
	return &Error{Status: http.StatusForbidden, Code: codeUnrecognizedClient, Message: msgInvalidToken}
}

func missingAuthToken() *Error {
	return &Error{Status: http.StatusForbidden, Code: codeMissingAuthToken, Message: "Missing Authentication Token"}
}

// credentialScope is the parsed Credential of a signature:
// AKID/YYYYMMDD/region/service/aws4_request.
type credentialScope struct {
	accessKeyID string
	date        string
	region      string
	service     string
}

// String returns the scope as it appears in the string to sign, without the
// access key id.
func (c credentialScope) String() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + sigTerminator
}

// sigParams is what a request states about its signature, from either the
// Authorization header or the presign query parameters.
type sigParams struct {
	presigned     bool
	credential    credentialScope
	signedHeaders []string // lower case, sorted, unique, includes host
	signature     string   // 64 lower-case hex digits

	// Filled in once the request's timestamp has been found.
	amzDate    string // YYYYMMDDTHHMMSSZ
	signedAt   time.Time
	dateHeader string        // header mode: "x-amz-date" or "date"
	expires    time.Duration // presign mode
}

func (p *sigParams) signs(name string) bool {
	_, found := slices.BinarySearch(p.signedHeaders, name)
	return found
}

// Verify checks the signature of r, whose body has already been read into body
// (r.Body must not be read by Verify). service is the signing name the request must
// be scoped to ("ecs" or "servicediscovery"). It returns *Error values on failure.
//
// Verify checks the scope's service but not its region: the caller decides
// which regions it serves from Identity.Region.
func (v *Verifier) Verify(r *http.Request, body []byte, service string) (Identity, error) {
	query, queryErr := parseSigQuery(r.URL.RawQuery)
	p, err := locateSignature(r, query, queryErr)
	if err != nil {
		return Identity{}, err
	}
	if err := checkTimestamp(r, query, p); err != nil {
		return Identity{}, err
	}
	if p.credential.date != p.amzDate[:8] {
		return Identity{}, invalidSignature(fmt.Sprintf(
			"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			p.credential.date, p.amzDate[:8], p.amzDate))
	}
	if p.credential.service != service {
		return Identity{}, invalidSignature(fmt.Sprintf("Credential should be scoped to correct service: '%s'. ", service))
	}
	if err := checkSignedHeaders(r, query, p); err != nil {
		return Identity{}, err
	}
	if err := v.checkClock(p); err != nil {
		return Identity{}, err
	}

	secret, ok := "", false
	if v.Credentials != nil {
		secret, ok = v.Credentials.SecretKey(p.credential.accessKeyID)
	}
	if !ok {
		return Identity{}, unrecognizedClient()
	}
	// Wharf issues no temporary credentials, so no session token is valid.
	if len(r.Header.Values(paramSecurityToken)) > 0 || hasSigParam(query, paramSecurityToken) {
		return Identity{}, unrecognizedClient()
	}

	payloadHash, err := canonicalPayloadHash(r, body, p.presigned)
	if err != nil {
		return Identity{}, err
	}

	id := signingKeyID{
		accessKeyID: p.credential.accessKeyID,
		secret:      secret,
		date:        p.credential.date,
		region:      p.credential.region,
		service:     p.credential.service,
	}
	key, cached := v.keys.get(id)
	if !cached {
		key = deriveSigningKey(secret, id.date, id.region, id.service)
	}
	if !signatureMatches(r, query, p, payloadHash, key) {
		return Identity{}, invalidSignature(msgSignatureMismatch)
	}
	if !cached {
		v.keys.put(id, key)
	}
	return Identity{
		AccessKeyID: p.credential.accessKeyID,
		Region:      p.credential.region,
		Service:     p.credential.service,
		SignedAt:    p.signedAt,
	}, nil
}

// locateSignature finds the signature in exactly one place, the
// Authorization header or the presign query parameters, and parses it.
func locateSignature(r *http.Request, query []sigQueryParam, queryErr error) (*sigParams, *Error) {
	auth := r.Header.Values("Authorization")
	presigned := hasSigParam(query, paramAlgorithm) || hasSigParam(query, paramCredential) || hasSigParam(query, paramSignature)
	switch {
	case len(auth) > 0 && presigned:
		return nil, incompleteSignature("Only one auth mechanism allowed; send either the Authorization header " +
			"or the X-Amz-Algorithm, X-Amz-Credential and X-Amz-Signature query parameters, not both.")
	case len(auth) > 1:
		return nil, incompleteSignature("The request has more than one Authorization header; send exactly one.")
	case len(auth) == 0 && !presigned:
		return nil, missingAuthToken()
	}
	if queryErr != nil {
		return nil, incompleteSignature("The query string is not valid percent-encoding, so the request cannot be canonicalized.")
	}
	if presigned {
		return parsePresign(query)
	}
	p, err := parseAuthorization(auth[0])
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// parseAuthorization parses an Authorization header of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/region/service/aws4_request, SignedHeaders=a;b;c, Signature=<hex>
//
// The three components may come in any order, separated by commas with or
// without spaces or tabs around them; each must appear exactly once.
func parseAuthorization(h string) (sigParams, *Error) {
	h = strings.Trim(h, " \t")
	alg, rest := h, ""
	if i := strings.IndexAny(h, " \t"); i >= 0 {
		alg, rest = h[:i], h[i+1:]
	}
	if alg != sigAlgorithm {
		return sigParams{}, incompleteSignature("Unsupported Authorization type: the Authorization header must begin with '" +
			sigAlgorithm + "' (AWS Signature Version 4).")
	}

	var credential, signedHeaders, signature string
	var haveCredential, haveSignedHeaders, haveSignature bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.Trim(part, " \t")
		key, value, ok := strings.Cut(part, "=")
		if !ok || strings.ContainsAny(value, " \t") {
			return sigParams{}, incompleteSignature("Authorization header components must be Key=Value pairs " +
				"separated by commas: Credential=..., SignedHeaders=..., Signature=...")
		}
		var dst *string
		var seen *bool
		switch key {
		case "Credential":
			dst, seen = &credential, &haveCredential
		case "SignedHeaders":
			dst, seen = &signedHeaders, &haveSignedHeaders
		case "Signature":
			dst, seen = &signature, &haveSignature
		default:
			return sigParams{}, incompleteSignature("Authorization header has an unknown component; " +
				"only Credential, SignedHeaders and Signature are allowed.")
		}
		if *seen {
			return sigParams{}, incompleteSignature(fmt.Sprintf("Authorization header has more than one '%s' component.", key))
		}
		*dst, *seen = value, true
	}
	switch {
	case !haveCredential:
		return sigParams{}, incompleteSignature("Authorization header requires 'Credential' parameter.")
	case !haveSignedHeaders:
		return sigParams{}, incompleteSignature("Authorization header requires 'SignedHeaders' parameter.")
	case !haveSignature:
		return sigParams{}, incompleteSignature("Authorization header requires 'Signature' parameter.")
	}
	return parseSigComponents(credential, signedHeaders, signature)
}

// parsePresign reads the signature from presign query parameters.
func parsePresign(query []sigQueryParam) (*sigParams, *Error) {
	var vals [6]string
	for i, name := range [...]string{paramAlgorithm, paramCredential, paramDate, paramExpires, paramSignedHeaders, paramSignature} {
		v, n := sigParam(query, name)
		if n == 0 {
			return nil, incompleteSignature("Query-string authentication version 4 requires the X-Amz-Algorithm, " +
				"X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
		if n > 1 {
			return nil, incompleteSignature(fmt.Sprintf("The query string has more than one %s parameter.", name))
		}
		vals[i] = v
	}
	if vals[0] != sigAlgorithm {
		return nil, incompleteSignature("X-Amz-Algorithm only supports '" + sigAlgorithm + "'.")
	}
	p, err := parseSigComponents(vals[1], vals[4], vals[5])
	if err != nil {
		return nil, err
	}
	p.presigned = true
	exp, ok := parseDecimal(vals[3])
	if !ok || exp < 1 || exp > maxPresignExpires {
		return nil, incompleteSignature(fmt.Sprintf(
			"X-Amz-Expires must be a whole number of seconds from 1 to %d (one week).", maxPresignExpires))
	}
	p.expires = time.Duration(exp) * time.Second
	return &p, nil
}

// parseDecimal parses up to seven decimal digits.
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 7 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func parseSigComponents(credential, signedHeaders, signature string) (sigParams, *Error) {
	scope, err := parseCredential(credential)
	if err != nil {
		return sigParams{}, err
	}
	headers, err := parseSignedHeaders(signedHeaders)
	if err != nil {
		return sigParams{}, err
	}
	if !isLowerHexLen(signature, sha256.Size*2) {
		return sigParams{}, incompleteSignature("Signature must be 64 lower-case hexadecimal characters.")
	}
	return sigParams{credential: scope, signedHeaders: headers, signature: signature}, nil
}

// parseCredential parses AKID/YYYYMMDD/region/service/aws4_request.
func parseCredential(s string) (credentialScope, *Error) {
	parts := strings.Split(s, "/")
	if len(parts) != 5 {
		return credentialScope{}, incompleteSignature("Credential must have the form " +
			"ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request.")
	}
	c := credentialScope{accessKeyID: parts[0], date: parts[1], region: parts[2], service: parts[3]}
	if !allBytes(c.accessKeyID, maxAccessKeyIDLen, isAccessKeyIDByte) {
		return credentialScope{}, incompleteSignature("Credential has an invalid access key id; " +
			"it must be 1 to 128 letters, digits, '.', '_' or '-'.")
	}
	if !isDecimal(c.date, 8) {
		return credentialScope{}, incompleteSignature("Credential should be scoped to a date in the format YYYYMMDD.")
	}
	if _, err := time.Parse(scopeDateLayout, c.date); err != nil {
		return credentialScope{}, incompleteSignature("Credential should be scoped to a valid date in the format YYYYMMDD.")
	}
	if !allBytes(c.region, maxScopeNameLen, isRegionByte) {
		return credentialScope{}, incompleteSignature("Credential should be scoped to a valid region " +
			"(letters, digits and hyphens, such as us-east-1).")
	}
	if !allBytes(c.service, maxScopeNameLen, isServiceByte) {
		return credentialScope{}, incompleteSignature("Credential should be scoped to a valid service " +
			"(lower-case letters, digits and hyphens, such as ecs).")
	}
	if parts[4] != sigTerminator {
		return credentialScope{}, incompleteSignature("Credential should be scoped with a valid terminator: '" + sigTerminator + "'.")
	}
	return c, nil
}

// parseSignedHeaders parses a SignedHeaders list: lower-case header names
// separated by ';', sorted, without duplicates, including host.
func parseSignedHeaders(s string) ([]string, *Error) {
	headers := make([]string, 0, strings.Count(s, ";")+1)
	for name := range strings.SplitSeq(s, ";") {
		if !allBytes(name, len(name), isLowerTokenByte) {
			return nil, incompleteSignature("SignedHeaders must be lower-case header names separated by ';'.")
		}
		if n := len(headers); n > 0 && headers[n-1] >= name {
			return nil, incompleteSignature("SignedHeaders must be sorted and must not repeat a header.")
		}
		headers = append(headers, name)
	}
	if _, found := slices.BinarySearch(headers, "host"); !found {
		return nil, incompleteSignature("SignedHeaders must include host.")
	}
	return headers, nil
}

// checkTimestamp finds and parses the request's signing time: the
// X-Amz-Date query parameter of a presigned request, else the X-Amz-Date or
// Date header.
func checkTimestamp(r *http.Request, query []sigQueryParam, p *sigParams) *Error {
	if p.presigned {
		p.amzDate, _ = sigParam(query, paramDate)
	} else {
		xd, d := r.Header.Values("X-Amz-Date"), r.Header.Values("Date")
		switch {
		case len(xd) > 1:
			return incompleteSignature("The request has more than one X-Amz-Date header; send exactly one.")
		case len(xd) == 1:
			p.amzDate, p.dateHeader = xd[0], "x-amz-date"
		case len(d) > 1:
			return incompleteSignature("The request has more than one Date header; send exactly one.")
		case len(d) == 1:
			p.amzDate, p.dateHeader = d[0], "date"
		default:
			return incompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
		}
	}
	t, ok := parseAmzDate(p.amzDate)
	if !ok {
		return incompleteSignature("X-Amz-Date must be an ISO 8601 basic UTC timestamp, YYYYMMDD'T'HHMMSS'Z', such as 20260101T000000Z.")
	}
	p.signedAt = t
	return nil
}

func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateLayout) || !isDecimal(s[:8], 8) || s[8] != 'T' || !isDecimal(s[9:15], 6) || s[15] != 'Z' {
		return time.Time{}, false
	}
	t, err := time.Parse(amzDateLayout, s)
	return t, err == nil
}

// mustSign lists headers that, when a request carries them, must be signed:
// unsigned, they could be changed without invalidating the signature.
// X-Amz-Target picks the operation and Content-Type the protocol.
var mustSign = [...]string{"Content-Type", "X-Amz-Content-Sha256", "X-Amz-Security-Token", "X-Amz-Target"}

// checkSignedHeaders checks that the headers that matter are signed and
// that no signed header value could break the canonical request's lines.
func checkSignedHeaders(r *http.Request, query []sigQueryParam, p *sigParams) *Error {
	if p.dateHeader != "" && !p.signs(p.dateHeader) {
		return incompleteSignature("SignedHeaders must include " + p.dateHeader + ".")
	}
	for _, name := range mustSign {
		vals := r.Header.Values(name)
		if len(vals) == 0 {
			continue
		}
		lower := strings.ToLower(name)
		if p.signs(lower) {
			continue
		}
		// A presigning SDK moves X-Amz-* headers into the query string,
		// where the signature covers them; the header must then repeat
		// the signed value.
		if p.presigned && strings.HasPrefix(name, "X-Amz-") && slices.Equal(vals, sigParamValues(query, name)) {
			continue
		}
		return incompleteSignature(fmt.Sprintf("The %s header must be signed; add %s to SignedHeaders.", name, lower))
	}
	if strings.ContainsAny(signedHost(r), "\r\n") {
		return incompleteSignature("Signed header values must not contain line breaks.")
	}
	for _, name := range p.signedHeaders {
		for _, v := range r.Header.Values(name) {
			if strings.ContainsAny(v, "\r\n") {
				return incompleteSignature("Signed header values must not contain line breaks.")
			}
		}
	}
	return nil
}

// checkClock checks the signing time against the verifier's clock.
func (v *Verifier) checkClock(p *sigParams) *Error {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = defaultMaxSkew
	}
	t := now().UTC().Truncate(time.Second)
	if latest := t.Add(skew); p.signedAt.After(latest) {
		return invalidSignature(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
			p.amzDate, formatAmzDate(latest), formatAmzDate(t), formatSkew(skew)))
	}
	window := skew
	if p.presigned {
		window = p.expires
	}
	if earliest := t.Add(-window); p.signedAt.Before(earliest) {
		return invalidSignature(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
			p.amzDate, formatAmzDate(earliest), formatAmzDate(t), formatSkew(window)))
	}
	return nil
}

func formatAmzDate(t time.Time) string { return t.UTC().Format(amzDateLayout) }

// formatSkew writes a duration as AWS does in its clock errors: "15 min.".
func formatSkew(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min."
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + " sec."
}

// canonicalPayloadHash returns the payload hash of the canonical request: the hex
// SHA-256 of body, or UNSIGNED-PAYLOAD for a presigned request that says so.
// A X-Amz-Content-Sha256 header must agree with the body.
func canonicalPayloadHash(r *http.Request, body []byte, presigned bool) (string, *Error) {
	sum := sha256.Sum256(body)
	computed := hex.EncodeToString(sum[:])
	sent := r.Header.Values("X-Amz-Content-Sha256")
	switch {
	case len(sent) == 0:
		return computed, nil
	case len(sent) > 1:
		return "", invalidSignature("The request has more than one x-amz-content-sha256 header; send exactly one.")
	case sent[0] == computed:
		return computed, nil
	case sent[0] == unsignedPayload && presigned:
		return unsignedPayload, nil
	case sent[0] == unsignedPayload || strings.HasPrefix(sent[0], "STREAMING-"):
		return "", invalidSignature("The x-amz-content-sha256 header must be the hex SHA-256 of the request body; " +
			"unsigned and streaming payloads are not accepted.")
	default:
		return "", invalidSignature(msgContentHashMismatch)
	}
}

// signatureMatches recomputes the signature of r and compares it with the
// one the request carries.
func signatureMatches(r *http.Request, query []sigQueryParam, p *sigParams, payloadHash string, key []byte) bool {
	if hmac.Equal(computeSignature(r, query, p, payloadHash, key, false), []byte(p.signature)) {
		return true
	}
	// aws-sdk-go-v2 collapses only runs of spaces in header values where
	// other SDKs collapse all whitespace; try its form when they differ.
	if altWhitespace(r, p) {
		return hmac.Equal(computeSignature(r, query, p, payloadHash, key, true), []byte(p.signature))
	}
	return false
}

// computeSignature returns the lower-case hex signature of r.
func computeSignature(r *http.Request, query []sigQueryParam, p *sigParams, payloadHash string, key []byte, spacesOnly bool) []byte {
	canonical := canonicalRequest(r, query, p, payloadHash, spacesOnly)
	sum := sha256.Sum256(canonical)

	scope := p.credential.String()
	sts := make([]byte, 0, len(sigAlgorithm)+len(p.amzDate)+len(scope)+3+2*sha256.Size)
	sts = append(sts, sigAlgorithm...)
	sts = append(sts, '\n')
	sts = append(sts, p.amzDate...)
	sts = append(sts, '\n')
	sts = append(sts, scope...)
	sts = append(sts, '\n')
	sts = hex.AppendEncode(sts, sum[:])

	return hex.AppendEncode(make([]byte, 0, 2*sha256.Size), sigHMAC(key, sts))
}

// canonicalRequest builds the canonical request:
//
//	method \n URI \n query \n headers \n signed headers \n payload hash
func canonicalRequest(r *http.Request, query []sigQueryParam, p *sigParams, payloadHash string, spacesOnly bool) []byte {
	b := make([]byte, 0, 512)
	b = append(b, r.Method...)
	b = append(b, '\n')
	b = appendCanonicalURI(b, r.URL)
	b = append(b, '\n')
	b = appendCanonicalQuery(b, query, p.presigned)
	b = append(b, '\n')
	for _, name := range p.signedHeaders {
		b = append(b, name...)
		b = append(b, ':')
		for i, v := range signedHeaderValues(r, name) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonicalValue(b, v, spacesOnly)
		}
		b = append(b, '\n')
	}
	b = append(b, '\n')
	for i, name := range p.signedHeaders {
		if i > 0 {
			b = append(b, ';')
		}
		b = append(b, name...)
	}
	b = append(b, '\n')
	return append(b, payloadHash...)
}

// signedHost is the host the client addressed, port included.
func signedHost(r *http.Request) string {
	if r.Host != "" {
		return r.Host
	}
	return r.URL.Host
}

// signedHeaderValues returns the values of a signed header.
func signedHeaderValues(r *http.Request, name string) []string {
	if name == "host" {
		return []string{signedHost(r)}
	}
	vals := r.Header.Values(name)
	if len(vals) == 0 && name == "content-length" && r.ContentLength >= 0 {
		// net/http keeps Content-Length in r.ContentLength for requests it
		// builds.
		return []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	return vals
}

// appendCanonicalValue appends v trimmed, with each internal run of
// whitespace collapsed to one space. With spacesOnly it follows
// aws-sdk-go-v2 instead: only runs of spaces are collapsed, then
// surrounding white space is trimmed.
func appendCanonicalValue(b []byte, v string, spacesOnly bool) []byte {
	isSpace := isHeaderSpace
	if spacesOnly {
		isSpace = func(c byte) bool { return c == ' ' }
	}
	start := len(b)
	pending := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if isSpace(c) {
			pending = len(b) > start
			continue
		}
		if pending {
			b = append(b, ' ')
			pending = false
		}
		b = append(b, c)
	}
	if spacesOnly {
		trimmed := strings.TrimSpace(string(b[start:]))
		b = append(b[:start], trimmed...)
	}
	return b
}

func isHeaderSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' }

// altWhitespace reports whether some signed header value canonicalizes
// differently under aws-sdk-go-v2's whitespace rule.
func altWhitespace(r *http.Request, p *sigParams) bool {
	for _, name := range p.signedHeaders {
		for _, v := range signedHeaderValues(r, name) {
			for i := 0; i < len(v); i++ {
				if c := v[i]; (c != ' ' && isHeaderSpace(c)) || c >= 0x80 {
					return true
				}
			}
		}
	}
	return false
}

// appendCanonicalURI appends the request path as it was sent, with each
// segment URI-encoded once more, as every service but S3 signs it.
func appendCanonicalURI(b []byte, u *url.URL) []byte {
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	return appendEscaped(b, path, true)
}

// sigQueryParam is one decoded key=value pair of a query string.
type sigQueryParam struct {
	key, value string
}

// parseSigQuery decodes a query string. Pairs that are not valid percent-encoding
// are left out and reported by the error.
func parseSigQuery(raw string) ([]sigQueryParam, error) {
	if raw == "" {
		return nil, nil
	}
	var firstErr error
	params := make([]sigQueryParam, 0, strings.Count(raw, "&")+1)
	for pair := range strings.SplitSeq(raw, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err1 := url.QueryUnescape(k)
		value, err2 := url.QueryUnescape(v)
		if err1 != nil || err2 != nil {
			if firstErr == nil {
				firstErr = errors.New("query string is not valid percent-encoding")
			}
			continue
		}
		params = append(params, sigQueryParam{key, value})
	}
	return params, firstErr
}

// sigParam returns the first value of the query parameter name and how many
// times it occurs.
func sigParam(query []sigQueryParam, name string) (string, int) {
	var first string
	n := 0
	for _, p := range query {
		if p.key == name {
			if n == 0 {
				first = p.value
			}
			n++
		}
	}
	return first, n
}

func sigParamValues(query []sigQueryParam, name string) []string {
	var vals []string
	for _, p := range query {
		if p.key == name {
			vals = append(vals, p.value)
		}
	}
	return vals
}

func hasSigParam(query []sigQueryParam, name string) bool {
	_, n := sigParam(query, name)
	return n > 0
}

// appendCanonicalQuery appends the query re-encoded with %20 for spaces and
// sorted by encoded key, then value. A presigned request's X-Amz-Signature
// is left out.
func appendCanonicalQuery(b []byte, query []sigQueryParam, presigned bool) []byte {
	if len(query) == 0 {
		return b
	}
	encoded := make([]sigQueryParam, 0, len(query))
	for _, p := range query {
		if presigned && p.key == paramSignature {
			continue
		}
		encoded = append(encoded, sigQueryParam{
			key:   string(appendEscaped(nil, p.key, false)),
			value: string(appendEscaped(nil, p.value, false)),
		})
	}
	slices.SortFunc(encoded, func(a, b sigQueryParam) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range encoded {
		if i > 0 {
			b = append(b, '&')
		}
		b = append(b, p.key...)
		b = append(b, '=')
		b = append(b, p.value...)
	}
	return b
}

// appendEscaped appends s with every byte outside RFC 3986's unreserved set
// (and '/' when keepSlash) percent-encoded in upper case.
func appendEscaped(b []byte, s string, keepSlash bool) []byte {
	const hexUpper = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			b = append(b, c)
			continue
		}
		b = append(b, '%', hexUpper[c>>4], hexUpper[c&0xf])
	}
	return b
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

func isAccessKeyIDByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.'
}

func isRegionByte(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

func isServiceByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-'
}

// isLowerTokenByte reports whether c may appear in a lower-case HTTP header
// name (an RFC 9110 token without upper-case letters).
func isLowerTokenByte(c byte) bool {
	if 'a' <= c && c <= 'z' || '0' <= c && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// allBytes reports whether s has 1 to max bytes, all accepted by ok.
func allBytes(s string, max int, ok func(byte) bool) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func isDecimal(s string, n int) bool {
	return len(s) == n && allBytes(s, n, func(c byte) bool { return '0' <= c && c <= '9' })
}

func isLowerHexLen(s string, n int) bool {
	return len(s) == n && allBytes(s, n, func(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' })
}

func sigHMAC(key, data []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// deriveSigningKey derives the SigV4 signing key of a credential scope.
func deriveSigningKey(secret, date, region, service string) []byte {
	k := sigHMAC([]byte("AWS4"+secret), []byte(date))
	k = sigHMAC(k, []byte(region))
	k = sigHMAC(k, []byte(service))
	return sigHMAC(k, []byte(sigTerminator))
}

// signingKeyCacheSize bounds the number of cached signing keys. A key serves
// one access key, day, region and service, so a few per client suffice.
const signingKeyCacheSize = 256

// signingKeyID identifies a derived signing key. It includes the secret so
// that a rotated secret never meets a key derived from the old one.
type signingKeyID struct {
	accessKeyID, secret, date, region, service string
}

// signingKeyCache is a small, bounded, concurrency-safe cache of derived
// signing keys. Only keys that verified a signature are stored, so requests
// with bad signatures cannot churn it.
type signingKeyCache struct {
	mu   sync.RWMutex
	keys map[signingKeyID][]byte
}

func (c *signingKeyCache) get(id signingKeyID) ([]byte, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	k, ok := c.keys[id]
	return k, ok
}

func (c *signingKeyCache) put(id signingKeyID, key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.keys == nil {
		c.keys = make(map[signingKeyID][]byte)
	}
	if _, ok := c.keys[id]; !ok && len(c.keys) >= signingKeyCacheSize {
		// Evict an arbitrary entry; map iteration order is unspecified.
		for old := range c.keys {
			delete(c.keys, old)
			break
		}
	}
	c.keys[id] = key
}
