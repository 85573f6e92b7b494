package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
)

// TLS is 1.3 only, as in Service Connect. Certificates come from callbacks
// at each handshake, so rotation needs no Apply.

func alpn(protocol string) []string {
	switch {
	case isHTTP2(protocol):
		return []string{"h2"}
	case protocol == ProtocolHTTP:
		return []string{"http/1.1"}
	}
	return nil
}

// clientTLSConfig is the configuration for connections to an upstream.
func clientTLSConfig(c *ClientTLS, protocol string) *tls.Config {
	if c == nil {
		return nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		RootCAs:            c.RootCAs,
		ServerName:         c.ServerName,
		NextProtos:         alpn(protocol),
		ClientSessionCache: tls.NewLRUClientSessionCache(64),
	}
	if get := c.Certificate; get != nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return get()
		}
	}
	return cfg
}

// serverTLSConfig is the configuration of an ingress.
func serverTLSConfig(s *ServerTLS, protocol string) *tls.Config {
	if s == nil {
		return nil
	}
	get := s.Certificate
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS13,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := get()
			if err == nil && cert == nil {
				err = errors.New("no certificate to serve")
			}
			return cert, err
		},
	}
	if isHTTP2(protocol) {
		// HTTP/1.1 too: net/http serves both behind the one listener.
		cfg.NextProtos = []string{"h2", "http/1.1"}
	} else {
		cfg.NextProtos = alpn(protocol)
	}
	if s.ClientCAs != nil {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = s.ClientCAs
	}
	return cfg
}

func certPoolsEqual(a, b *x509.CertPool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a == b || a.Equal(b)
}

// isTLSAlert reports whether err is an alert from the TLS peer, such as a
// rejected client certificate.
// crypto/tls reports those as a *net.OpError with Op "remote error".
func isTLSAlert(err error) bool {
	var oe *net.OpError
	return err != nil && errors.As(err, &oe) && oe.Op == "remote error"
}
