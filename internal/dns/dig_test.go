package dns

import (
	"context"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// lookPathOrSkip finds a program the test needs: it skips the test when
// the program is missing, and fails it when CI is set. (testenv.LookPath
// does the same, but testenv imports the server, which will import this
// package.)
func lookPathOrSkip(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found, and CI is set: install Debian's %s", name, pkg)
	}
	t.Skipf("%s not found; install Debian's %s to run this test", name, pkg)
	return ""
}

// TestDig asks the server the key questions with dig, as a user would.
func TestDig(t *testing.T) {
	t.Parallel()
	dig := lookPathOrSkip(t, "dig", "bind9-dnsutils")
	st := openStore(t)
	seedExample(t, st)
	s := startServer(t, st)
	host, port, _ := net.SplitHostPort(s.Addr())

	run := func(t *testing.T, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		args = append([]string{"@" + host, "-p", port, "+time=2", "+tries=1"}, args...)
		out, err := exec.CommandContext(ctx, dig, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	lines := func(out string) []string {
		var l []string
		for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
			if line != "" {
				l = append(l, line)
			}
		}
		slices.Sort(l)
		return l
	}
	contains := func(t *testing.T, out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("dig output lacks %q:\n%s", w, out)
			}
		}
	}
	count := func(section, out string) string {
		m := regexp.MustCompile(section + `: (\d+)`).FindStringSubmatch(out)
		if m == nil {
			return ""
		}
		return m[1]
	}

	t.Run("A", func(t *testing.T) {
		if got := lines(run(t, "+short", "web.example.local", "A")); !slices.Equal(got, []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"}) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("AAAA", func(t *testing.T) {
		if got := lines(run(t, "+short", "web.example.local", "AAAA")); !slices.Equal(got, []string{"fd00::1", "fd00::2", "fd00::3"}) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("SRV with additional addresses and TTL", func(t *testing.T) {
		out := run(t, "+norec", "web.example.local", "SRV")
		contains(t, out, "status: NOERROR", "flags: qr aa;",
			"web.example.local.\t80\tIN\tSRV\t1 1 8081 i-1.web.example.local.",
			"i-1.web.example.local.\t60\tIN\tA\t10.0.0.1",
			"i-1.web.example.local.\t70\tIN\tAAAA\tfd00::1")
		if n := count("ANSWER", out); n != "3" {
			t.Errorf("ANSWER: %s, want 3", n)
		}
		if n := count("ADDITIONAL", out); n != "7" {
			t.Errorf("ADDITIONAL: %s, want 7 (6 addresses and the OPT)", n)
		}
	})
	t.Run("SOA", func(t *testing.T) {
		got := lines(run(t, "+short", "example.local", "SOA"))
		if len(got) != 1 || !regexp.MustCompile(`^ns1\.example\.local\. hostmaster\.example\.local\. \d+ 7200 900 1209600 30$`).MatchString(got[0]) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("NS", func(t *testing.T) {
		out := run(t, "example.local", "NS")
		contains(t, out, "example.local.\t\t30\tIN\tNS\tns1.example.local.", "ns1.example.local.\t30\tIN\tA\t127.0.0.1")
	})
	t.Run("NXDOMAIN with SOA", func(t *testing.T) {
		out := run(t, "nope.example.local", "A")
		contains(t, out, "status: NXDOMAIN", "AUTHORITY: 1", "IN\tSOA\tns1.example.local.")
	})
	t.Run("NODATA with SOA", func(t *testing.T) {
		out := run(t, "web.example.local", "TXT")
		contains(t, out, "status: NOERROR", "ANSWER: 0", "AUTHORITY: 1", "IN\tSOA\tns1.example.local.")
	})
	t.Run("case-insensitive", func(t *testing.T) {
		if got := lines(run(t, "+short", "WEB.Example.LOCAL", "A")); len(got) != 3 {
			t.Errorf("got %q", got)
		}
	})
	t.Run("multivalue limit", func(t *testing.T) {
		if got := lines(run(t, "+short", "many.example.local", "A")); len(got) != 8 {
			t.Errorf("%d records, want 8: %q", len(got), got)
		}
	})
	t.Run("health filtering", func(t *testing.T) {
		if got := lines(run(t, "+short", "mixed.example.local", "A")); !slices.Equal(got, []string{"10.2.0.1", "10.2.0.2"}) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("truncated over UDP, retried over TCP", func(t *testing.T) {
		out := run(t, "+noedns", "long.example.local", "SRV")
		contains(t, out, "Truncated, retrying in TCP mode", "status: NOERROR")
		if n := count("ANSWER", out); n != "8" {
			t.Errorf("ANSWER: %s, want 8 after the TCP retry", n)
		}
	})
	t.Run("truncated, not retried", func(t *testing.T) {
		out := run(t, "+noedns", "+ignore", "long.example.local", "SRV")
		if !regexp.MustCompile(`flags: qr aa tc`).MatchString(out) {
			t.Errorf("no TC flag:\n%s", out)
		}
	})
	t.Run("TCP", func(t *testing.T) {
		out := run(t, "+tcp", "long.example.local", "SRV")
		if n := count("ANSWER", out); n != "8" {
			t.Errorf("ANSWER: %s, want 8", n)
		}
	})
	t.Run("EDNS buffer capped at 1232", func(t *testing.T) {
		out := run(t, "+bufsize=4096", "web.example.local", "A")
		contains(t, out, "udp: 1232")
	})
	t.Run("REFUSED outside the zones", func(t *testing.T) {
		contains(t, run(t, "example.com", "A"), "status: REFUSED")
	})
}
