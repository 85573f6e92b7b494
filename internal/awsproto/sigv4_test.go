package awsproto

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/logging"
)

const (
	testAccessKeyID = "AKIDEXAMPLE"
	testSecret      = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	testRegion      = "us-east-1"
	testHost        = "127.0.0.1:4566"
	testTarget      = "AmazonEC2ContainerServiceV20141113.ListClusters"
	testContentType = "application/x-amz-json-1.1"
)

var (
	testSignTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testBody     = []byte(`{"maxResults":10}`)
)

func testCredentials() StaticCredentials {
	return StaticCredentials{testAccessKeyID: testSecret, "AKIDOTHER": "other-secret"}
}

// signOpts describes a request to sign with aws-sdk-go-v2's signer. Zero
// fields take the defaults of withDefaults.
type signOpts struct {
	method   string
	path     string
	rawQuery string
	body     []byte
	header   http.Header // set before signing, keys in canonical form; nil values delete

	accessKeyID  string
	secret       string
	sessionToken string
	region       string
	service      string
	at           time.Time
	payloadHash  string // defaults to the hex SHA-256 of body

	presignExpires int // presign with this X-Amz-Expires when > 0
}

func (o signOpts) withDefaults() signOpts {
	if o.method == "" {
		o.method = http.MethodPost
	}
	if o.path == "" {
		o.path = "/"
	}
	if o.body == nil {
		o.body = testBody
	}
	if o.accessKeyID == "" {
		o.accessKeyID = testAccessKeyID
	}
	if o.secret == "" {
		o.secret = testSecret
	}
	if o.region == "" {
		o.region = testRegion
	}
	if o.service == "" {
		o.service = "ecs"
	}
	if o.at.IsZero() {
		o.at = testSignTime
	}
	if o.payloadHash == "" {
		sum := sha256.Sum256(o.body)
		o.payloadHash = hex.EncodeToString(sum[:])
	}
	return o
}

// clientRequest builds the unsigned AWS JSON 1.1 request described by o.
func clientRequest(t testing.TB, o signOpts) *http.Request {
	t.Helper()
	r, err := http.NewRequest(o.method, "http://"+testHost+"/", bytes.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	r.URL.Path = o.path
	r.URL.RawQuery = o.rawQuery
	r.Header.Set("Content-Type", testContentType)
	r.Header.Set("X-Amz-Target", testTarget)
	for k, vs := range o.header {
		if vs == nil {
			r.Header.Del(k)
			continue
		}
		r.Header[k] = append([]string(nil), vs...)
	}
	return r
}

// signedRequest signs the request described by o with aws-sdk-go-v2's
// signer, in the Authorization header or, with presignExpires, in the query
// string. It returns the request as a server reads it off the wire, and its
// body.
func signedRequest(t testing.TB, o signOpts) (*http.Request, []byte) {
	t.Helper()
	o = o.withDefaults()
	r := clientRequest(t, o)
	creds := aws.Credentials{AccessKeyID: o.accessKeyID, SecretAccessKey: o.secret, SessionToken: o.sessionToken}
	signer := v4.NewSigner()
	ctx := context.Background()

	if o.presignExpires == 0 {
		if err := signer.SignHTTP(ctx, creds, r, o.payloadHash, o.service, o.region, o.at); err != nil {
			t.Fatal(err)
		}
		return toWire(t, r, o.body)
	}

	q := r.URL.Query()
	q.Set("X-Amz-Expires", strconv.Itoa(o.presignExpires))
	r.URL.RawQuery = q.Encode()
	signedURL, signedHeaders, err := signer.PresignHTTP(ctx, creds, r, o.payloadHash, o.service, o.region, o.at)
	if err != nil {
		t.Fatal(err)
	}
	pr, err := http.NewRequest(o.method, signedURL, bytes.NewReader(o.body))
	if err != nil {
		t.Fatal(err)
	}
	// Send the original headers too: X-Amz-Target was hoisted into the
	// query and repeats it.
	for k, vs := range r.Header {
		pr.Header[k] = vs
	}
	for k, vs := range signedHeaders {
		if k != "Host" && k != "Content-Length" {
			pr.Header[k] = vs
		}
	}
	return toWire(t, pr, o.body)
}

// toWire writes r in HTTP/1.1 wire format and reads it back as net/http's
// server would, so Host, header keys and the query are what Verify sees in
// production.
func toWire(t testing.TB, r *http.Request, body []byte) (*http.Request, []byte) {
	t.Helper()
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	var buf bytes.Buffer
	if err := r.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	return sr, got
}

// editAuthorization rewrites the Authorization header with edit.
func editAuthorization(t *testing.T, r *http.Request, edit func(string) string) {
	t.Helper()
	h := r.Header.Get("Authorization")
	if h == "" {
		t.Fatal("request has no Authorization header")
	}
	r.Header.Set("Authorization", edit(h))
}

// editQuery rewrites the raw query with edit.
func editQuery(r *http.Request, edit func(string) string) {
	r.URL.RawQuery = edit(r.URL.RawQuery)
	r.RequestURI = r.URL.RequestURI()
}

func replaceOnce(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("%q does not contain %q", s, old)
	}
	return strings.Replace(s, old, new, 1)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func wantStatus(code string) int {
	if code == codeIncompleteSignature {
		return http.StatusBadRequest
	}
	return http.StatusForbidden
}

// checkVerifyErr checks that err is the *Error with the given code, the
// status that goes with it and a message containing msg, and that it gives
// nothing secret away.
func checkVerifyErr(t *testing.T, err error, code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded, want %s", code)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("Verify error is %T (%v), want *Error", err, err)
	}
	if e.Code != code || e.Status != wantStatus(code) {
		t.Fatalf("Verify error = %d %s: %s; want %d %s", e.Status, e.Code, e.Message, wantStatus(code), code)
	}
	if !strings.Contains(e.Message, msg) {
		t.Errorf("Verify message = %q, want it to contain %q", e.Message, msg)
	}
	if strings.Contains(e.Message, testSecret) || strings.Contains(e.Message, "\n") {
		t.Errorf("Verify message %q leaks the secret or a canonical request", e.Message)
	}
}

func TestVerify(t *testing.T) {
	const mismatch = "The request signature we calculated does not match the signature you provided."
	unsignedHeader := func(name, value string) func(*testing.T, *http.Request, []byte) []byte {
		return func(_ *testing.T, r *http.Request, body []byte) []byte {
			r.Header.Set(name, value)
			return body
		}
	}

	tests := []struct {
		name    string
		sign    signOpts
		mutate  func(t *testing.T, r *http.Request, body []byte) []byte // may return a new body
		service string                                                  // default "ecs"
		now     time.Time                                               // default testSignTime
		maxSkew time.Duration

		wantCode string // "" means Verify must succeed
		wantMsg  string
	}{
		// Requests that must verify.
		{name: "header signed"},
		{name: "presigned", sign: signOpts{presignExpires: 900}},
		{name: "servicediscovery", sign: signOpts{service: "servicediscovery"}, service: "servicediscovery"},
		{name: "empty body", sign: signOpts{body: []byte{}}},
		{
			name: "query reordered",
			sign: signOpts{rawQuery: "b=2&a=1&a=0"},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(string) string { return "b=2&a=1&a=0" })
				return body
			},
		},
		{
			name: "query space sent as plus",
			sign: signOpts{rawQuery: "q=a%20b%20c"},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(string) string { return "q=a+b+c" })
				return body
			},
		},
		{name: "query unicode and reserved characters", sign: signOpts{rawQuery: "name=h%C3%A9llo%20w%C3%B6rld%2F%E2%9C%93&empty=&tilde=~-._&plus=1%2B1%3D2&star=%2A"}},
		{name: "query key without value", sign: signOpts{rawQuery: "flag&x=1"}},
		{name: "path encoded twice", sign: signOpts{path: "/a b/ü/c%d"}},
		{name: "header value whitespace collapsed", sign: signOpts{header: http.Header{"X-Amz-Meta-Note": {"  a   b    c  "}}}},
		{
			name: "header value whitespace changed after signing",
			sign: signOpts{header: http.Header{"X-Amz-Meta-Note": {"a b c"}}},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Set("X-Amz-Meta-Note", "a     b  c")
				return body
			},
		},
		{name: "header value with tabs", sign: signOpts{header: http.Header{"X-Amz-Meta-Note": {"a\t\tb \t c"}}}},
		{name: "multi-value header", sign: signOpts{header: http.Header{"X-Amz-Meta-Multi": {"one", " two  three ", "four"}}}},
		{
			name: "authorization without spaces after commas",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return strings.ReplaceAll(h, ", ", ",") })
				return body
			},
		},
		{
			name: "authorization with extra whitespace and reordered components",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string {
					alg, rest, _ := strings.Cut(h, " ")
					parts := strings.Split(rest, ", ")
					return alg + "   " + parts[2] + " ,\t" + parts[0] + " , " + parts[1]
				})
				return body
			},
		},
		{name: "skew at the late limit", now: testSignTime.Add(15 * time.Minute)},
		{name: "skew at the early limit", now: testSignTime.Add(-15 * time.Minute)},
		{name: "skew within a custom window", now: testSignTime.Add(5 * time.Minute), maxSkew: 5 * time.Minute},
		{name: "presign at expiry", sign: signOpts{presignExpires: 900}, now: testSignTime.Add(900 * time.Second)},
		{name: "presign valid for a week", sign: signOpts{presignExpires: 604800}, now: testSignTime.Add(7 * 24 * time.Hour)},
		{
			name: "presign with unsigned payload",
			sign: signOpts{
				presignExpires: 900,
				header:         http.Header{"X-Amz-Content-Sha256": {unsignedPayload}},
				payloadHash:    unsignedPayload,
			},
		},
		{name: "content hash matches body", sign: signOpts{header: http.Header{"X-Amz-Content-Sha256": {sha256Hex(testBody)}}}},

		// Locating the signature.
		{
			name: "no authentication",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Del("Authorization")
				return body
			},
			wantCode: codeMissingAuthToken, wantMsg: "Missing Authentication Token",
		},
		{
			name: "duplicate authorization header",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Add("Authorization", r.Header.Get("Authorization"))
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "more than one Authorization header",
		},
		{
			name: "header and query authentication",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(string) string {
					return "X-Amz-Signature=" + strings.Repeat("0", 64)
				})
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "Only one auth mechanism allowed",
		},
		{
			name: "presign and authorization header",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				hr, _ := signedRequest(t, signOpts{})
				r.Header.Set("Authorization", hr.Header.Get("Authorization"))
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "Only one auth mechanism allowed",
		},
		{
			name: "invalid query encoding",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(string) string { return "a=%zz" })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "percent-encoding",
		},

		// Parsing the Authorization header.
		{
			name: "unknown algorithm",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, "SHA256", "SHA512") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "AWS4-HMAC-SHA256",
		},
		{
			name:     "bearer token",
			mutate:   unsignedHeader("Authorization", "Bearer abc"),
			wantCode: codeIncompleteSignature, wantMsg: "AWS4-HMAC-SHA256",
		},
		{
			name: "duplicate component",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return h + ", Signature=" + strings.Repeat("0", 64) })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "more than one 'Signature'",
		},
		{
			name: "missing signature component",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return h[:strings.LastIndex(h, ", Signature=")] })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "requires 'Signature' parameter",
		},
		{
			name: "upper-case hex signature",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string {
					i := strings.LastIndex(h, "=") + 1
					return h[:i] + strings.ToUpper(h[i:])
				})
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "64 lower-case hexadecimal",
		},
		{
			name: "truncated signature",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return h[:len(h)-1] })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "64 lower-case hexadecimal",
		},
		{
			name:     "region with underscores",
			sign:     signOpts{region: "us_east_1"},
			wantCode: codeIncompleteSignature, wantMsg: "valid region",
		},
		{
			name: "empty region",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, "/"+testRegion+"/", "//") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "valid region",
		},
		{
			name:     "access key id with invalid characters",
			sign:     signOpts{accessKeyID: "AKID+EXAMPLE"},
			wantCode: codeIncompleteSignature, wantMsg: "invalid access key id",
		},
		{
			name:     "upper-case service",
			sign:     signOpts{service: "ECS"},
			wantCode: codeIncompleteSignature, wantMsg: "valid service",
		},
		{
			name: "six scope parts",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, "/ecs/", "/ecs/x/") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "Credential must have the form",
		},
		{
			name: "bad terminator",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, "aws4_request", "aws4_reques") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "valid terminator",
		},
		{
			name: "host not signed",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, ";host;", ";") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "SignedHeaders must include host.",
		},
		{
			name: "signed headers unsorted",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, "content-type;host", "host;content-type") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "sorted",
		},
		{
			name: "signed headers upper case",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, ";host;", ";Host;") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "lower-case header names",
		},

		// Timestamp and scope.
		{
			name: "no date",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Del("X-Amz-Date")
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "either a 'X-Amz-Date' or a 'Date' header",
		},
		{
			name: "date header in HTTP format",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Del("X-Amz-Date")
				r.Header.Set("Date", testSignTime.Format(http.TimeFormat))
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "ISO 8601 basic",
		},
		{
			name:     "malformed x-amz-date",
			mutate:   unsignedHeader("X-Amz-Date", "2026-01-01T00:00:00Z"),
			wantCode: codeIncompleteSignature, wantMsg: "ISO 8601 basic",
		},
		{
			name: "x-amz-date not signed",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editAuthorization(t, r, func(h string) string { return replaceOnce(t, h, ";x-amz-date", "") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "SignedHeaders must include x-amz-date.",
		},
		{
			name: "duplicate x-amz-date header",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Add("X-Amz-Date", r.Header.Get("X-Amz-Date"))
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "more than one X-Amz-Date header",
		},
		{
			name:     "scope date differs from x-amz-date",
			mutate:   unsignedHeader("X-Amz-Date", "20260102T000000Z"),
			wantCode: codeInvalidSignature,
			wantMsg:  "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20260101' != '20260102', from '20260102T000000Z'.",
		},
		{
			name:     "wrong service",
			service:  "servicediscovery",
			wantCode: codeInvalidSignature, wantMsg: "Credential should be scoped to correct service: 'servicediscovery'. ",
		},
		{
			name:     "servicediscovery signature used for ecs",
			sign:     signOpts{service: "servicediscovery"},
			wantCode: codeInvalidSignature, wantMsg: "Credential should be scoped to correct service: 'ecs'. ",
		},
		{
			name:     "skew past the late limit",
			now:      testSignTime.Add(15*time.Minute + time.Second),
			wantCode: codeInvalidSignature,
			wantMsg:  "Signature expired: 20260101T000000Z is now earlier than 20260101T000001Z (20260101T001501Z - 15 min.)",
		},
		{
			name:     "skew past the early limit",
			now:      testSignTime.Add(-15*time.Minute - time.Second),
			wantCode: codeInvalidSignature,
			wantMsg:  "Signature not yet current: 20260101T000000Z is still later than 20251231T235959Z (20251231T234459Z + 15 min.)",
		},
		{
			name:     "skew past a custom window",
			now:      testSignTime.Add(5*time.Minute + time.Second),
			maxSkew:  5 * time.Minute,
			wantCode: codeInvalidSignature, wantMsg: "(20260101T000501Z - 5 min.)",
		},

		// Presigned requests.
		{
			name:     "presign expired",
			sign:     signOpts{presignExpires: 900},
			now:      testSignTime.Add(901 * time.Second),
			wantCode: codeInvalidSignature,
			wantMsg:  "Signature expired: 20260101T000000Z is now earlier than 20260101T000001Z (20260101T001501Z - 15 min.)",
		},
		{
			name:     "presign not yet current",
			sign:     signOpts{presignExpires: 900},
			now:      testSignTime.Add(-16 * time.Minute),
			wantCode: codeInvalidSignature, wantMsg: "Signature not yet current",
		},
		{
			name:     "presign expires after a week",
			sign:     signOpts{presignExpires: 604801},
			wantCode: codeIncompleteSignature, wantMsg: "X-Amz-Expires must be a whole number of seconds from 1 to 604800",
		},
		{
			name: "presign expires zero",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(q string) string { return replaceOnce(t, q, "X-Amz-Expires=900", "X-Amz-Expires=0") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "X-Amz-Expires",
		},
		{
			name: "presign expires not a number",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(q string) string { return replaceOnce(t, q, "X-Amz-Expires=900", "X-Amz-Expires=9e2") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "X-Amz-Expires",
		},
		{
			name: "presign without expires",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(q string) string { return replaceOnce(t, q, "X-Amz-Expires=900&", "") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "requires the X-Amz-Algorithm",
		},
		{
			name: "presign duplicate parameter",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(q string) string { return q + "&X-Amz-Date=20260101T000000Z" })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "more than one X-Amz-Date parameter",
		},
		{
			name: "presign unknown algorithm",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(q string) string { return replaceOnce(t, q, "SHA256", "SHA512") })
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "X-Amz-Algorithm only supports",
		},
		{
			name: "presign target header differs from signed query",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster")
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "The X-Amz-Target header must be signed",
		},
		{
			name: "presign body changed",
			sign: signOpts{presignExpires: 900},
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				return []byte(`{"maxResults":99}`)
			},
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},

		// Credentials.
		{name: "wrong secret", sign: signOpts{secret: "not-the-secret"}, wantCode: codeInvalidSignature, wantMsg: mismatch},
		{
			name:     "unknown access key",
			sign:     signOpts{accessKeyID: "AKIDUNKNOWN"},
			wantCode: codeUnrecognizedClient, wantMsg: "The security token included in the request is invalid.",
		},
		{
			name:     "session token",
			sign:     signOpts{sessionToken: "token"},
			wantCode: codeUnrecognizedClient, wantMsg: "The security token included in the request is invalid.",
		},
		{
			name:     "presigned session token",
			sign:     signOpts{sessionToken: "token", presignExpires: 900},
			wantCode: codeUnrecognizedClient, wantMsg: "The security token included in the request is invalid.",
		},
		{
			name:     "unsigned session token",
			mutate:   unsignedHeader("X-Amz-Security-Token", "token"),
			wantCode: codeIncompleteSignature, wantMsg: "The X-Amz-Security-Token header must be signed",
		},

		// Canonical request.
		{
			name: "body byte flipped",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				b := bytes.Clone(body)
				b[len(b)/2] ^= 1
				return b
			},
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},
		{
			name:     "signed header value changed",
			mutate:   unsignedHeader("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DeleteCluster"),
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},
		{
			name: "host changed",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Host = "127.0.0.1:4567"
				return body
			},
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},
		{
			name: "method changed",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Method = http.MethodPut
				return body
			},
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},
		{
			name: "query parameter added",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				editQuery(r, func(string) string { return "extra=1" })
				return body
			},
			wantCode: codeInvalidSignature, wantMsg: mismatch,
		},
		{
			name:     "target header not signed",
			sign:     signOpts{header: http.Header{"X-Amz-Target": nil}},
			mutate:   unsignedHeader("X-Amz-Target", testTarget),
			wantCode: codeIncompleteSignature, wantMsg: "The X-Amz-Target header must be signed",
		},
		{
			name: "header value with line break",
			mutate: func(t *testing.T, r *http.Request, body []byte) []byte {
				r.Header["X-Amz-Target"] = []string{testTarget + "\r\nX-Evil: 1"}
				return body
			},
			wantCode: codeIncompleteSignature, wantMsg: "line breaks",
		},

		// Payload hash.
		{
			name:     "bad content hash",
			sign:     signOpts{header: http.Header{"X-Amz-Content-Sha256": {sha256Hex([]byte("other"))}}},
			wantCode: codeInvalidSignature, wantMsg: "x-amz-content-sha256",
		},
		{
			name:     "unsigned payload outside presign",
			sign:     signOpts{header: http.Header{"X-Amz-Content-Sha256": {unsignedPayload}}, payloadHash: unsignedPayload},
			wantCode: codeInvalidSignature, wantMsg: "x-amz-content-sha256",
		},
		{
			name: "streaming payload",
			sign: signOpts{
				header:      http.Header{"X-Amz-Content-Sha256": {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD"}},
				payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
			},
			wantCode: codeInvalidSignature, wantMsg: "x-amz-content-sha256",
		},
		{
			name:     "duplicate content hash header",
			sign:     signOpts{header: http.Header{"X-Amz-Content-Sha256": {sha256Hex(testBody), sha256Hex(testBody)}}},
			wantCode: codeInvalidSignature, wantMsg: "more than one x-amz-content-sha256",
		},
		{
			name:     "content hash not signed",
			mutate:   unsignedHeader("X-Amz-Content-Sha256", sha256Hex(testBody)),
			wantCode: codeIncompleteSignature, wantMsg: "The X-Amz-Content-Sha256 header must be signed",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, body := signedRequest(t, tt.sign)
			if tt.mutate != nil {
				body = tt.mutate(t, r, body)
			}
			service := tt.service
			if service == "" {
				service = "ecs"
			}
			now := tt.now
			if now.IsZero() {
				now = testSignTime
			}
			v := &Verifier{Credentials: testCredentials(), MaxSkew: tt.maxSkew, Now: func() time.Time { return now }}

			id, err := v.Verify(r, body, service)
			if tt.wantCode != "" {
				checkVerifyErr(t, err, tt.wantCode, tt.wantMsg)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := Identity{AccessKeyID: testAccessKeyID, Region: testRegion, Service: service, SignedAt: testSignTime}
			if id != want {
				t.Errorf("Verify identity = %+v, want %+v", id, want)
			}
		})
	}
}

// TestVerifyHidesExpectedSignature checks that a mismatch does not reveal
// the signature the server expected.
func TestVerifyHidesExpectedSignature(t *testing.T) {
	good, _ := signedRequest(t, signOpts{})
	r, body := signedRequest(t, signOpts{secret: "not-the-secret"})
	v := &Verifier{Credentials: testCredentials(), Now: func() time.Time { return testSignTime }}
	_, err := v.Verify(r, body, "ecs")
	checkVerifyErr(t, err, codeInvalidSignature, "does not match")

	h := good.Header.Get("Authorization")
	expected := h[strings.LastIndex(h, "=")+1:]
	if strings.Contains(err.Error(), expected) {
		t.Errorf("error %q contains the expected signature", err)
	}
}

// TestVerifyTestSuite checks vectors of the AWS SigV4 test suite
// (aws4_testsuite, as vendored by botocore), independently of any SDK.
func TestVerifyTestSuite(t *testing.T) {
	const (
		date  = "20150830T123600Z"
		scope = "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature="
	)
	tests := []struct {
		name, uri, signature string
	}{
		{"get-vanilla", "/", "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", "/?Param2=value2&Param1=value1", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"get-vanilla-query-unreserved", "/?-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "GET " + tt.uri + " HTTP/1.1\r\nHost: example.amazonaws.com\r\nX-Amz-Date: " + date +
				"\r\nAuthorization: AWS4-HMAC-SHA256 " + scope + tt.signature + "\r\n\r\n"
			r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw)))
			if err != nil {
				t.Fatal(err)
			}
			v := &Verifier{
				Credentials: StaticCredentials{testAccessKeyID: testSecret},
				Now:         func() time.Time { return time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC) },
			}
			if _, err := v.Verify(r, nil, "service"); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// sdkCanonicalRequest returns the canonical request aws-sdk-go-v2 builds
// when it signs the request described by o.
func sdkCanonicalRequest(t *testing.T, o signOpts) string {
	t.Helper()
	o = o.withDefaults()
	r := clientRequest(t, o)
	var logged string
	logger := logging.LoggerFunc(func(_ logging.Classification, format string, v ...any) {
		logged = fmt.Sprintf(format, v...)
	})
	signer := v4.NewSigner(func(so *v4.SignerOptions) {
		so.LogSigning = true
		so.Logger = logger
	})
	creds := aws.Credentials{AccessKeyID: o.accessKeyID, SecretAccessKey: o.secret}
	if err := signer.SignHTTP(context.Background(), creds, r, o.payloadHash, o.service, o.region, o.at); err != nil {
		t.Fatal(err)
	}
	const start, end = "---[ CANONICAL STRING  ]-----------------------------\n", "\n---[ STRING TO SIGN ]"
	i, j := strings.Index(logged, start), strings.Index(logged, end)
	if i < 0 || j < i {
		t.Fatalf("no canonical string in the signer's log:\n%s", logged)
	}
	return logged[i+len(start) : j]
}

// TestCanonicalRequest compares the canonical request built from the
// request a server receives with the one aws-sdk-go-v2 signed.
func TestCanonicalRequest(t *testing.T) {
	tests := []struct {
		name string
		sign signOpts
	}{
		{"plain", signOpts{}},
		{"header whitespace", signOpts{header: http.Header{"X-Amz-Meta-Note": {"  a   b    c  "}}}},
		{"multi-value header", signOpts{header: http.Header{"X-Amz-Meta-Multi": {"one", "two"}}}},
		{"query with spaces and unicode", signOpts{rawQuery: "q=a%20b&u=%C3%BC%E2%9C%93&z=1&a=2&a=1"}},
		{"path", signOpts{path: "/a b/ü/%"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := sdkCanonicalRequest(t, tt.sign)
			r, body := signedRequest(t, tt.sign)
			query, err := parseSigQuery(r.URL.RawQuery)
			if err != nil {
				t.Fatal(err)
			}
			p, perr := parseAuthorization(r.Header.Get("Authorization"))
			if perr != nil {
				t.Fatal(perr)
			}
			got := string(canonicalRequest(r, query, &p, sha256Hex(body), false))
			if got != want {
				t.Errorf("canonical request:\n%s\nwant (aws-sdk-go-v2):\n%s", got, want)
			}
		})
	}
}

func TestParseAuthorizationWhitespace(t *testing.T) {
	const (
		cred = "Credential=AKID/20260101/us-east-1/ecs/aws4_request"
		sh   = "SignedHeaders=content-type;host;x-amz-date"
		sig  = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	)
	tests := []struct {
		name, header string
		ok           bool
	}{
		{"sdk form", "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig, true},
		{"no spaces", "AWS4-HMAC-SHA256 " + cred + "," + sh + "," + sig, true},
		{"spaces around commas", "AWS4-HMAC-SHA256  " + cred + " , " + sh + " ,  " + sig + " ", true},
		{"tabs", "AWS4-HMAC-SHA256\t" + cred + ",\t" + sh + ",\t" + sig, true},
		{"reordered", "AWS4-HMAC-SHA256 " + sig + ", " + cred + ", " + sh, true},
		{"space separated", "AWS4-HMAC-SHA256 " + cred + " " + sh + " " + sig, false},
		{"trailing comma", "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ",", false},
		{"unknown component", "AWS4-HMAC-SHA256 " + cred + ", " + sh + ", " + sig + ", Extra=1", false},
		{"lower-case component name", "AWS4-HMAC-SHA256 credential=AKID/20260101/us-east-1/ecs/aws4_request, " + sh + ", " + sig, false},
		{"no algorithm separator", "AWS4-HMAC-SHA256" + cred + ", " + sh + ", " + sig, false},
		{"empty", "", false},
		{"invalid scope date", "AWS4-HMAC-SHA256 Credential=AKID/20261301/us-east-1/ecs/aws4_request, " + sh + ", " + sig, false},
		{"empty signed header", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;;x-amz-date, " + sig, false},
		{"duplicate signed header", "AWS4-HMAC-SHA256 " + cred + ", SignedHeaders=host;host, " + sig, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseAuthorization(tt.header)
			if !tt.ok {
				if err == nil {
					t.Fatalf("parseAuthorization(%q) = %+v, want an error", tt.header, p)
				}
				if err.Code != codeIncompleteSignature || err.Status != http.StatusBadRequest {
					t.Errorf("parseAuthorization error = %d %s", err.Status, err.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAuthorization(%q): %v", tt.header, err)
			}
			want := credentialScope{accessKeyID: "AKID", date: "20260101", region: "us-east-1", service: "ecs"}
			if p.credential != want || strings.Join(p.signedHeaders, ";") != "content-type;host;x-amz-date" {
				t.Errorf("parseAuthorization(%q) = %+v", tt.header, p)
			}
		})
	}
}

// TestVerifyOverHTTP sends SDK-signed requests to a loopback server that
// verifies them with the real clock.
func TestVerifyOverHTTP(t *testing.T) {
	v := &Verifier{Credentials: testCredentials()}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if _, err := v.Verify(r, body, "ecs"); err != nil {
			var e *Error
			errors.As(err, &e)
			w.Header().Set("X-Amzn-ErrorType", e.Code)
			w.WriteHeader(e.Status)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()

	host := strings.TrimPrefix(srv.URL, "http://")
	creds := aws.Credentials{AccessKeyID: testAccessKeyID, SecretAccessKey: testSecret}
	newRequest := func(t *testing.T, secret string) *http.Request {
		r, err := http.NewRequest(http.MethodPost, srv.URL+"/", bytes.NewReader(testBody))
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Content-Type", testContentType)
		r.Header.Set("X-Amz-Target", testTarget)
		if r.Host != host && r.URL.Host != host {
			t.Fatalf("request host %q, want %q", r.URL.Host, host)
		}
		return r
	}

	tests := []struct {
		name       string
		secret     string
		presign    bool
		wantStatus int
		wantCode   string
	}{
		{name: "header", secret: testSecret, wantStatus: http.StatusOK},
		{name: "presigned", secret: testSecret, presign: true, wantStatus: http.StatusOK},
		{name: "wrong secret", secret: "wrong", wantStatus: http.StatusForbidden, wantCode: codeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRequest(t, tt.secret)
			c := creds
			c.SecretAccessKey = tt.secret
			signer := v4.NewSigner()
			if tt.presign {
				q := r.URL.Query()
				q.Set("X-Amz-Expires", "60")
				r.URL.RawQuery = q.Encode()
				u, hdr, err := signer.PresignHTTP(context.Background(), c, r, sha256Hex(testBody), "ecs", testRegion, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				pr, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(testBody))
				if err != nil {
					t.Fatal(err)
				}
				for k, vs := range hdr {
					if k != "Host" && k != "Content-Length" {
						pr.Header[k] = vs
					}
				}
				r = pr
			} else if err := signer.SignHTTP(context.Background(), c, r, sha256Hex(testBody), "ecs", testRegion, time.Now()); err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(r)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.wantStatus || resp.Header.Get("X-Amzn-ErrorType") != tt.wantCode {
				t.Errorf("response %d %q, want %d %q", resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), tt.wantStatus, tt.wantCode)
			}
		})
	}
}

// TestVerifyConcurrent verifies from many goroutines at once, over more
// credential scopes than the key cache holds, for the race detector.
func TestVerifyConcurrent(t *testing.T) {
	const workers, scopes = 8, 2 * signingKeyCacheSize
	type signed struct {
		r    *http.Request
		body []byte
		ok   bool
	}
	reqs := make([]signed, 0, scopes)
	for i := range scopes {
		o := signOpts{region: fmt.Sprintf("region-%d", i)}
		if i%5 == 0 {
			o.secret = "wrong"
		}
		r, body := signedRequest(t, o)
		reqs = append(reqs, signed{r, body, i%5 != 0})
	}

	v := &Verifier{Credentials: testCredentials(), Now: func() time.Time { return testSignTime }}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range reqs {
				s := reqs[(i+w*31)%len(reqs)]
				_, err := v.Verify(s.r, s.body, "ecs")
				if (err == nil) != s.ok {
					errs <- fmt.Errorf("request %d: Verify error %v, want success %t", i, err, s.ok)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	v.keys.mu.RLock()
	n := len(v.keys.keys)
	v.keys.mu.RUnlock()
	if n > signingKeyCacheSize {
		t.Errorf("key cache holds %d keys, want at most %d", n, signingKeyCacheSize)
	}
}

func TestSigningKeyCache(t *testing.T) {
	v := &Verifier{Credentials: testCredentials(), Now: func() time.Time { return testSignTime }}
	count := func() int {
		v.keys.mu.RLock()
		defer v.keys.mu.RUnlock()
		return len(v.keys.keys)
	}

	r, body := signedRequest(t, signOpts{secret: "wrong"})
	if _, err := v.Verify(r, body, "ecs"); err == nil {
		t.Fatal("Verify succeeded with a wrong secret")
	}
	if n := count(); n != 0 {
		t.Fatalf("key cache holds %d keys after a bad signature, want 0", n)
	}

	r, body = signedRequest(t, signOpts{})
	for range 2 {
		if _, err := v.Verify(r, body, "ecs"); err != nil {
			t.Fatalf("Verify: %v", err)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("key cache holds %d keys after verifying one scope, want 1", n)
	}

	// A rotated secret must not reuse the cached key.
	v.Credentials = StaticCredentials{testAccessKeyID: "rotated"}
	if _, err := v.Verify(r, body, "ecs"); err == nil {
		t.Fatal("Verify succeeded with the old secret after rotation")
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, bc := range []struct {
		name string
		sign signOpts
	}{
		{"header", signOpts{}},
		{"presigned", signOpts{presignExpires: 900}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r, body := signedRequest(b, bc.sign)
			v := &Verifier{Credentials: testCredentials(), Now: func() time.Time { return testSignTime }}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(r, body, "ecs"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
