package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.temporal.io/sdk/client"
)

// hermetic keeps the developer's own Temporal settings out of a test.
func hermetic(t *testing.T) {
	for _, k := range []string{"TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_API_KEY", "TEMPORAL_TLS", "TEMPORAL_PROFILE",
		"TEMPORAL_TLS_CLIENT_CERT_PATH", "TEMPORAL_TLS_CLIENT_KEY_PATH", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", filepath.Join(t.TempDir(), "none.toml"))
}

// writeCert writes a self-signed client certificate and its key.
func writeCert(t *testing.T) (certPath, keyPath string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dnsroll"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, keyPath = filepath.Join(dir, "client.pem"), filepath.Join(dir, "client.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPath, keyPath
}

func TestTemporalOptionsFromEnvironment(t *testing.T) {
	cert, key := writeCert(t)
	tests := []struct {
		name          string
		env           map[string]string
		flags         temporalFlags
		wantHost      string
		wantNamespace string
		wantTLS       bool
		wantCreds     bool
		wantCerts     int
	}{
		{name: "defaults", flags: temporalFlags{fromEnv: true}, wantHost: "127.0.0.1:7233", wantNamespace: "default"},
		{name: "address and namespace", env: map[string]string{"TEMPORAL_ADDRESS": "temporal:7233", "TEMPORAL_NAMESPACE": "dns"},
			flags: temporalFlags{fromEnv: true}, wantHost: "temporal:7233", wantNamespace: "dns"},
		{name: "flags win", env: map[string]string{"TEMPORAL_ADDRESS": "temporal:7233"},
			flags: temporalFlags{fromEnv: true, address: "other:7233", namespace: "ns"}, wantHost: "other:7233", wantNamespace: "ns"},
		{name: "Temporal Cloud API key", env: map[string]string{"TEMPORAL_ADDRESS": "dns.a1b2c.tmprl.cloud:7233", "TEMPORAL_NAMESPACE": "dns.a1b2c", "TEMPORAL_API_KEY": "k"},
			flags: temporalFlags{fromEnv: true}, wantHost: "dns.a1b2c.tmprl.cloud:7233", wantNamespace: "dns.a1b2c", wantTLS: true, wantCreds: true},
		{name: "mTLS client certificate", env: map[string]string{"TEMPORAL_TLS_CLIENT_CERT_PATH": cert, "TEMPORAL_TLS_CLIENT_KEY_PATH": key},
			flags: temporalFlags{fromEnv: true}, wantHost: "127.0.0.1:7233", wantNamespace: "default", wantTLS: true, wantCerts: 1},
		{name: "the lab ignores the environment", env: map[string]string{"TEMPORAL_API_KEY": "k"},
			flags: temporalFlags{address: "127.0.0.1:7999", namespace: "default"}, wantHost: "127.0.0.1:7999", wantNamespace: "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hermetic(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			opts, err := tt.flags.options()
			if err != nil {
				t.Fatal(err)
			}
			if opts.HostPort != tt.wantHost || opts.Namespace != tt.wantNamespace {
				t.Errorf("host %q namespace %q, want %q %q", opts.HostPort, opts.Namespace, tt.wantHost, tt.wantNamespace)
			}
			if got := opts.ConnectionOptions.TLS != nil; got != tt.wantTLS {
				t.Errorf("TLS = %v, want %v", got, tt.wantTLS)
			}
			if got := opts.Credentials != nil; got != tt.wantCreds {
				t.Errorf("credentials = %v, want %v", got, tt.wantCreds)
			}
			if tt.wantCerts > 0 && len(opts.ConnectionOptions.TLS.Certificates) != tt.wantCerts {
				t.Errorf("client certificates = %d, want %d", len(opts.ConnectionOptions.TLS.Certificates), tt.wantCerts)
			}
		})
	}
}

// A malformed Temporal address fails before dialling, naming the flag and
// the form, not with gRPC's "no children to pick from". What gRPC takes
// stays accepted: a host alone (gRPC dials port 443, as behind a TLS
// ingress), an empty host (localhost), a target with a scheme.
func TestTemporalAddress(t *testing.T) {
	hermetic(t)
	for _, addr := range []string{"temporal:", "::1", "[::1", "a:b:c"} {
		f := temporalFlags{fromEnv: true, address: addr}
		if _, err := f.options(); err == nil || !strings.Contains(err.Error(), "--temporal-address (or TEMPORAL_ADDRESS)") || !strings.Contains(err.Error(), "host:port") {
			t.Errorf("address %q: err = %v, want one naming --temporal-address and host:port", addr, err)
		}
	}
	for _, addr := range []string{"temporal", ":7233", "[::1]:7233", "temporal.example.com:7233", "dns:///temporal:7233"} {
		f := temporalFlags{fromEnv: true, address: addr}
		if opts, err := f.options(); err != nil || opts.HostPort != addr {
			t.Errorf("address %q: %v (host %q), want it taken as written", addr, err, opts.HostPort)
		}
	}
	if hint := dialHint("temporal"); !strings.Contains(hint, "443") {
		t.Errorf("the hint for an address without a port is %q, want it to say gRPC dials 443", hint)
	}
	if hint := dialHint("temporal:7233"); hint != "" {
		t.Errorf("the hint for host:port is %q, want none", hint)
	}
}

// An address written as a URL, as web consoles show one, is refused
// before dialling, saying to drop the scheme, rather than with gRPC's
// "too many colons in address" for http://host:7233:443. TLS is not
// something a scheme can ask for here.
func TestTemporalAddressWithHTTPScheme(t *testing.T) {
	hermetic(t)
	for _, addr := range []string{"http://temporal:7233", "https://dns.a1b2c.tmprl.cloud:7233", "HTTPS://temporal"} {
		f := temporalFlags{fromEnv: true, address: addr}
		_, err := f.options()
		if err == nil || !strings.Contains(err.Error(), "--temporal-address (or TEMPORAL_ADDRESS)") || !strings.Contains(err.Error(), "without the scheme") || !strings.Contains(err.Error(), "TEMPORAL_TLS") {
			t.Errorf("address %q: err = %v, want one naming --temporal-address, saying to drop the scheme and how TLS is set", addr, err)
		}
	}
	// A password written into the URL is not quoted back.
	f := temporalFlags{fromEnv: true, address: "https://ops:s3cret@temporal.example:7233"}
	if _, err := f.options(); err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "such as temporal.example:7233") {
		t.Errorf("err = %v; want the host:port to write, without the URL's user and password", err)
	}
}

// A TLS mismatch with the server fails the dial with gRPC's words, which
// name no setting: the error adds the one that fixes it. A server
// certificate not trusted or not for the address's host names the CA and
// server name settings; TLS to a server without it, and no TLS to one
// with it, name TEMPORAL_TLS.
func TestTemporalDialTLSErrorsNameTheFix(t *testing.T) {
	h := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
	tlsSrv := httptest.NewUnstartedServer(h)
	tlsSrv.EnableHTTP2 = true // gRPC asks for h2 before it checks the certificate
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(h)
	defer plainSrv.Close()
	host := func(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://") }
	for _, tt := range []struct {
		name, addr, tls string
		want            []string
	}{
		{"untrusted certificate", host(tlsSrv.URL), "true", []string{"x509", "TEMPORAL_TLS_SERVER_CA_CERT_PATH", "TEMPORAL_TLS_SERVER_NAME"}},
		{"TLS to a plaintext server", host(plainSrv.URL), "true", []string{"does not speak TLS", "TEMPORAL_TLS"}},
		{"plaintext to a TLS server", host(tlsSrv.URL), "", []string{"TEMPORAL_TLS=true"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			hermetic(t)
			t.Setenv("TEMPORAL_TLS", tt.tls)
			f := temporalFlags{fromEnv: true, address: tt.addr}
			c, err := f.dial()
			if err == nil {
				c.Close()
				t.Fatal("dialled")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// The dev API's token file is private and survives restarts.
func TestLabToken(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev", "api-token")
	first, err := labToken(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || len(first) < 32 {
		t.Fatalf("token file %v %v, token length %d", fi.Mode(), err, len(first))
	}
	if again, err := labToken(path); err != nil || again != first {
		t.Errorf("second read: %q %v, want the same token", again, err)
	}
	// An emptied or cut token file is not a token: the dev API would
	// take an empty one for no authentication.
	for _, kept := range []string{"", "\n", "short\n"} {
		if err := os.WriteFile(path, []byte(kept), 0o600); err != nil {
			t.Fatal(err)
		}
		if tok, err := labToken(path); err != nil || len(tok) < 32 {
			t.Errorf("token file %q: token %q %v, want a new long one", kept, tok, err)
		}
	}
}

func TestVersion(t *testing.T) {
	commit = "abc1234"
	defer func() { commit = "" }()
	if got := version(); !strings.HasPrefix(got, "dnsroll abc1234 (go") {
		t.Errorf("version() = %q", got)
	}
}

// The API's server closes a connection left idle between requests (and
// one whose request never finishes): before, either was held for ever.
func TestServeHTTPClosesIdleConnections(t *testing.T) {
	saved := httpTimeouts
	t.Cleanup(func() { httpTimeouts = saved })
	httpTimeouts.idle, httpTimeouts.read = 200*time.Millisecond, 300*time.Millisecond
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		_ = serveHTTP(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	}()
	for name, send := range map[string]string{
		"idle after a request": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"a body never sent":    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
	} {
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, send); err != nil {
			t.Fatal(err)
		}
		// Read what the server sends until it closes the connection, or a
		// bound well past the timeouts.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = io.Copy(io.Discard, conn)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("%s: the connection was still open after 5s", name)
		}
		conn.Close()
	}
}

// A config file that does not parse is named with the line and key, not
// quoted: TOML's error quotes the value it could not read, and that may be
// the API key, on its way to the worker's log.
func TestTemporalConfigFileErrorDoesNotQuoteIt(t *testing.T) {
	hermetic(t)
	file := filepath.Join(t.TempDir(), "temporal.toml")
	if err := os.WriteFile(file, []byte("[profile.default]\naddress = \"t:7233\"\napi_key = eyJs3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TEMPORAL_CONFIG_FILE", file)
	_, err := (&temporalFlags{fromEnv: true}).options()
	if err == nil || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("options: %v; want the file and its line named, and no value quoted", err)
	}
}

// Without TEMPORAL_CONFIG_FILE, the file named is the default one, where
// the user's config directory is.
func TestTemporalDefaultConfigFileErrorNamesIt(t *testing.T) {
	hermetic(t)
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", dir)
	t.Setenv("TEMPORAL_CONFIG_FILE", "")
	file := filepath.Join(dir, "temporalio", "temporal.toml")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("[profile.default]\napi_key = eyJs3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := (&temporalFlags{fromEnv: true}).options()
	if err == nil || !strings.Contains(err.Error(), file+" does not parse at line 2") || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("options: %v; want %s named with its line, and no value quoted", err, file)
	}
}

// The SDK warns of a heartbeat it still had in flight when a step ended
// ("context canceled" once the step has returned): nothing for an operator
// to act on, so the worker's log and the demo's output leave it out. Every
// other warning is kept, a heartbeat that failed otherwise included.
func TestSDKLogDropsTheHeartbeatCancelledAtAStepsEnd(t *testing.T) {
	var b strings.Builder
	l := sdkLogger(&b)
	l.Warn("RecordActivityHeartbeat with error", "Error", errors.New("rpc error: code = Canceled desc = context canceled"))
	l.Warn("RecordActivityHeartbeat with error", "Error", errors.New("rpc error: code = Unavailable desc = connection refused"))
	l.Warn("Failed to poll for task.", "Error", errors.New("context canceled"))
	l.Info("started")
	got := b.String()
	if strings.Count(got, "RecordActivityHeartbeat") != 1 || !strings.Contains(got, "connection refused") || !strings.Contains(got, "Failed to poll") || strings.Contains(got, "started") {
		t.Errorf("log:\n%s\nwant the failed heartbeat and the poll warning alone", got)
	}
}

// A TLS server that gets a plaintext client's preface closes the
// connection; with the preface still unread in its buffer, the kernel
// resets it, and gRPC says "connection reset by peer" where it otherwise
// says EOF. Either way the operator is told to turn TLS on.
func TestTLSHintOnAResetPreface(t *testing.T) {
	plain := client.Options{}
	for _, msg := range []string{
		`connection error: desc = "error reading server preface: EOF"`,
		`connection error: desc = "error reading server preface: read tcp 127.0.0.1:40000->127.0.0.1:7233: read: connection reset by peer"`,
	} {
		if hint := tlsHint(plain, errors.New(msg)); !strings.Contains(hint, "TEMPORAL_TLS=true") {
			t.Errorf("hint for %q is %q, want one naming TEMPORAL_TLS=true", msg, hint)
		}
	}
	// A reset with TLS on already is not a server that wants TLS.
	withTLS := client.Options{ConnectionOptions: client.ConnectionOptions{TLS: &tls.Config{}}}
	if hint := tlsHint(withTLS, errors.New(`error reading server preface: read: connection reset by peer`)); hint != "" {
		t.Errorf("hint with TLS on: %q, want none", hint)
	}
}
