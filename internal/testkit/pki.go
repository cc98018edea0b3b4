package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// PKI is a throwaway certificate authority for one test, with its files in Dir: the CA, a server
// certificate for 127.0.0.1 and localhost, a client certificate, and a client certificate signed by
// another CA (one the PKI's pool does not hold). Keys are PKCS #8 PEM.
type PKI struct {
	Dir    string
	CAFile string
	Pool   *x509.CertPool // holds the CA

	ServerCertFile, ServerKeyFile string
	Server                        tls.Certificate

	ClientCertFile, ClientKeyFile string
	Client                        tls.Certificate

	Untrusted tls.Certificate // a client certificate from a CA Pool does not hold
}

var serial atomic.Int64

// NewPKI creates the certificates in a temporary directory of t.
func NewPKI(t testing.TB) *PKI {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCA(t, "sluice test CA")
	other, otherKey := newCA(t, "untrusted CA")
	p := &PKI{Dir: dir, CAFile: writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw), Pool: x509.NewCertPool()}
	p.Pool.AddCert(ca)
	p.ServerCertFile, p.ServerKeyFile, p.Server = newLeaf(t, dir, "server", ca, caKey, x509.ExtKeyUsageServerAuth)
	p.ClientCertFile, p.ClientKeyFile, p.Client = newLeaf(t, dir, "client", ca, caKey, x509.ExtKeyUsageClientAuth)
	_, _, p.Untrusted = newLeaf(t, dir, "untrusted", other, otherKey, x509.ExtKeyUsageClientAuth)
	return p
}

func newCA(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	der, key := issue(t, name, nil, nil, func(c *x509.Certificate) {
		c.IsCA, c.BasicConstraintsValid = true, true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	})
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

// newLeaf writes <name>.pem and <name>.key, signed by ca, valid for 127.0.0.1 and localhost.
func newLeaf(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, usage x509.ExtKeyUsage) (certFile, keyFile string, pair tls.Certificate) {
	t.Helper()
	der, key := issue(t, name, ca, caKey, func(c *x509.Certificate) {
		c.KeyUsage, c.ExtKeyUsage = x509.KeyUsageDigitalSignature, []x509.ExtKeyUsage{usage}
		c.DNSNames, c.IPAddresses = []string{"localhost"}, []net.IP{net.ParseIP("127.0.0.1")}
	})
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile = writePEM(t, dir, name+".pem", "CERTIFICATE", der)
	keyFile = writePEM(t, dir, name+".key", "PRIVATE KEY", kder)
	return certFile, keyFile, tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// issue makes a key and a certificate for it named name, valid from an hour ago for a day, shaped by
// edit, and signed by parent (nil: self-signed); it returns the certificate's DER and the key.
func issue(t testing.TB, name string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, edit func(*x509.Certificate)) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
	}
	edit(tmpl)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func writePEM(t testing.TB, dir, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
