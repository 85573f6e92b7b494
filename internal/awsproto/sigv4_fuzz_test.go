package awsproto

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, o := range []signOpts{
		{},
		{service: "servicediscovery", region: "eu-west-3"},
		{header: http.Header{"X-Amz-Meta-Note": {"a"}}},
		{sessionToken: "token"},
	} {
		r, _ := signedRequest(f, o)
		h := r.Header.Get("Authorization")
		f.Add(h)
		f.Add(strings.ReplaceAll(h, ", ", ","))
		f.Add(strings.ReplaceAll(h, ", ", " ,\t"))
	}
	f.Add("")
	f.Add("AWS4-HMAC-SHA256")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=00")
	f.Add("Bearer abc")

	f.Fuzz(func(t *testing.T, h string) {
		p, err := parseAuthorization(h)
		if err != nil {
			if err.Code != codeIncompleteSignature || err.Status != http.StatusBadRequest || err.Message == "" {
				t.Fatalf("parseAuthorization error = %d %q %q", err.Status, err.Code, err.Message)
			}
			return
		}
		if !isLowerHexLen(p.signature, 64) {
			t.Fatalf("signature %q is not 64 lower-case hex digits", p.signature)
		}
		if !slices.IsSorted(p.signedHeaders) || len(slices.Compact(slices.Clone(p.signedHeaders))) != len(p.signedHeaders) {
			t.Fatalf("signed headers %q are not sorted and unique", p.signedHeaders)
		}
		if !p.signs("host") {
			t.Fatalf("signed headers %q lack host", p.signedHeaders)
		}
		c := p.credential
		if c.accessKeyID == "" || len(c.date) != 8 || c.region == "" || c.service == "" {
			t.Fatalf("incomplete credential %+v", c)
		}

		// The canonical form of what was parsed parses to the same thing.
		canonical := sigAlgorithm + " Credential=" + c.accessKeyID + "/" + c.String() +
			", SignedHeaders=" + strings.Join(p.signedHeaders, ";") + ", Signature=" + p.signature
		q, err := parseAuthorization(canonical)
		if err != nil {
			t.Fatalf("parseAuthorization(%q) of a parsed header: %v", canonical, err)
		}
		if q.credential != p.credential || q.signature != p.signature || !slices.Equal(q.signedHeaders, p.signedHeaders) {
			t.Fatalf("round trip of %q gave %+v, want %+v", h, q, p)
		}
	})
}

func FuzzVerify(f *testing.F) {
	v := &Verifier{Credentials: testCredentials(), Now: func() time.Time { return testSignTime }}

	// request builds the request the fuzzer describes: the test request with
	// the given Authorization, X-Amz-Date and query (each left out when
	// empty).
	request := func(auth, amzDate, rawQuery string, body []byte) *http.Request {
		r := &http.Request{
			Method:        http.MethodPost,
			URL:           &url.URL{Path: "/", RawQuery: rawQuery},
			Host:          testHost,
			Header:        http.Header{"Content-Type": {testContentType}, "X-Amz-Target": {testTarget}},
			ContentLength: int64(len(body)),
		}
		if auth != "" {
			r.Header["Authorization"] = []string{auth}
		}
		if amzDate != "" {
			r.Header["X-Amz-Date"] = []string{amzDate}
		}
		return r
	}

	for _, o := range []signOpts{
		{},
		{body: []byte{}},
		{rawQuery: "a=1&b=%20c&d=%C3%BC"},
		{presignExpires: 900},
		{presignExpires: 900, rawQuery: "z=%2F"},
	} {
		r, body := signedRequest(f, o)
		auth, amzDate := r.Header.Get("Authorization"), r.Header.Get("X-Amz-Date")
		if _, err := v.Verify(request(auth, amzDate, r.URL.RawQuery, body), body, "ecs"); err != nil {
			f.Fatalf("seed %+v does not verify: %v", o, err)
		}
		f.Add(auth, amzDate, r.URL.RawQuery, body)
	}
	f.Add("", "", "", []byte(nil))
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/ecs/aws4_request, SignedHeaders=host, Signature=00",
		"20260101T000000Z", "X-Amz-Signature=1", []byte("{}"))

	f.Fuzz(func(t *testing.T, auth, amzDate, rawQuery string, body []byte) {
		id, err := v.Verify(request(auth, amzDate, rawQuery, body), body, "ecs")
		if err == nil {
			if id.AccessKeyID != testAccessKeyID || id.Service != "ecs" || id.SignedAt.IsZero() {
				t.Fatalf("Verify succeeded with identity %+v", id)
			}
			return
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("Verify error is %T (%v), want *Error", err, err)
		}
		if e.Code == "" || e.Message == "" || e.Status < 400 || e.Status > 499 {
			t.Fatalf("Verify error = %d %q %q", e.Status, e.Code, e.Message)
		}
	})
}
