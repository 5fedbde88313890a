package deployment_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
	"github.com/rtkit/rtkit/transports/longpoll"
	"github.com/rtkit/rtkit/transports/sse"
	rtws "github.com/rtkit/rtkit/transports/websocket"
)

// nginxBinary returns Debian's nginx, on the PATH or in /usr/sbin (which
// is not on every user's PATH), or skips t.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	t.Skip("nginx not found on the PATH or in /usr/sbin: apt-get install nginx (.ci/run does)")
	return ""
}

// readmeNginx returns the nginx configuration of the README's Production
// section: the test runs what users copy.
func readmeNginx(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := bytes.Cut(b, []byte("\n```nginx\n"))
	conf, _, ok2 := bytes.Cut(rest, []byte("\n```\n"))
	if !ok || !ok2 {
		t.Fatal("README.md has no ```nginx block")
	}
	return string(conf)
}

// edit replaces old, which must occur exactly once in conf, with new.
func edit(t *testing.T, conf, old, new string) string {
	t.Helper()
	if n := strings.Count(conf, old); n != 1 {
		t.Fatalf("the README's nginx block has %q %d times, want once", old, n)
	}
	return strings.Replace(conf, old, new, 1)
}

// startNginx runs nginx with site (the README's block, upstream and
// listen lines to be rewritten) in front of backend (host:port) and
// returns its URL. Everything nginx writes goes to a temporary
// directory, so it runs as any user; the test's cleanup stops it.
func startNginx(t *testing.T, site, backend string) string {
	t.Helper()
	return startNginxTLS(t, site, backend, false)
}

// startNginxTLS is startNginx, terminating TLS (with a certificate made
// for the test) when tls is set.
func startNginxTLS(t *testing.T, site, backend string, tls bool) string {
	t.Helper()
	bin := nginxBinary(t)
	site = edit(t, site, "server 127.0.0.1:8080;", "server "+backend+";")
	for attempt := 0; ; attempt++ {
		dir := t.TempDir()
		port := freePort(t)
		listen := "listen 127.0.0.1:" + port + ";"
		if tls {
			writeCert(t, dir)
			listen = "listen 127.0.0.1:" + port + " ssl; ssl_certificate " + dir + "/cert.pem; ssl_certificate_key " + dir + "/key.pem;"
		}
		conf := nginxConf(dir, edit(t, site, "listen 80;", listen))
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"), "-g", "daemon off;")
		cmd.Stdout, cmd.Stderr = &stderr, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		stop := func() {
			cmd.Process.Signal(syscall.SIGTERM) // fast shutdown: the master stops its workers
			select {
			case <-exited:
			case <-time.After(wait):
				cmd.Process.Kill()
				<-exited
			}
		}
		ready := make(chan error, 1)
		go func() { ready <- awaitListen("127.0.0.1:"+port, exited) }()
		if err := <-ready; err != nil {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			if attempt < 3 && bytes.Contains(log, []byte("Address already in use")) {
				continue // another process took the port meanwhile
			}
			t.Fatalf("nginx: %v\n%s\n%s", err, stderr.Bytes(), log)
		}
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Logf("nginx error.log:\n%s", log)
			}
		})
		if tls {
			return "https://127.0.0.1:" + port
		}
		return "http://127.0.0.1:" + port
	}
}

// writeCert writes a self-signed certificate for 127.0.0.1 and its key
// to dir/cert.pem and dir/key.pem.
func writeCert(t *testing.T, dir string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
}

// insecure is an HTTP client that accepts the test's certificate.
var insecure = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// loopbackProxy names nginx, on loopback, as the route's trusted proxy.
var loopbackProxy = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// nginxConf wraps site in a main configuration whose every path is in
// dir.
func nginxConf(dir, site string) string {
	user := ""
	if os.Geteuid() == 0 {
		// Workers would run as nobody, who cannot enter the test's
		// temporary directory.
		user = "user root;"
	}
	return fmt.Sprintf(`%[2]s
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;

%[3]s
}
`, dir, user, site)
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// awaitListen returns once addr accepts connections, or an error when
// the process exits first or wait passes: nginx reports readiness no
// other way.
func awaitListen(addr string, exited <-chan error) error {
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("exited before listening: %v", err)
		case <-time.After(delay):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %v", addr, wait)
		}
	}
}

// backend serves a ticking echo route over every transport on loopback
// and counts the connections it opened.
type backend struct {
	addr   string
	opened chan *realtime.Conn
}

func newBackend(t *testing.T, o realtime.Options) *backend {
	b := &backend{opened: make(chan *realtime.Conn, 16)}
	h := ticker(50 * time.Millisecond)
	open := h.OnOpen
	h.OnOpen = func(c *realtime.Conn) error {
		b.opened <- c
		return open(c)
	}
	o.Transports = []realtime.Transport{rtws.New(rtws.Options{}), sse.New(sse.Options{}), longpoll.New(longpoll.Options{})}
	rt := realtime.NewRoute(h, &o)
	srv := httptest.NewServer(rt)
	t.Cleanup(func() {
		rt.Shutdown(context.Background())
		srv.Close()
	})
	b.addr = strings.TrimPrefix(srv.URL, "http://")
	return b
}

// browserHeader is what a page served by the proxy sends.
func browserHeader(origin string) http.Header { return http.Header{"Origin": {origin}} }

// The README's configuration carries every transport, each from a page
// of the proxy's origin: the WebSocket upgrade (the Upgrade map), an SSE
// stream that is not buffered, its POST-backs, and long-polls, each
// connection living through many ticks and an echo. A foreign origin is
// still refused through the proxy.
func TestNginx(t *testing.T) {
	b := newBackend(t, realtime.Options{})
	url := startNginx(t, readmeNginx(t), b.addr)
	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			c := dial(t, url, k.kind, rtclient.Options{Header: browserHeader(url)})
			live(t, c, 10)
		})
	}
	t.Run("foreign origin", func(t *testing.T) {
		refused(t, url, "http://evil.example")
	})
}

// With nginx's default Host (the upstream's name), a page's upgrades and
// session requests fail the origin check: this is why the README passes
// the browser's host.
func TestNginxDefaultHostFailsTheOriginCheck(t *testing.T) {
	b := newBackend(t, realtime.Options{})
	site := edit(t, readmeNginx(t), "proxy_set_header Host $http_host;", "")
	url := startNginx(t, site, b.addr)
	refused(t, url, url)
	select {
	case <-b.opened:
		t.Fatal("a refused request opened a connection")
	default:
	}
}

// refused asserts that a page of origin cannot open a WebSocket, an SSE
// stream or a long-poll session at url: 403 each.
func refused(t *testing.T, url, origin string) {
	t.Helper()
	d := websocket.Dialer{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	ws, resp, err := d.Dial("ws"+strings.TrimPrefix(url, "http"), browserHeader(origin))
	if ws != nil {
		ws.Close()
	}
	if resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("WebSocket upgrade from %s: %v %v, want 403", origin, resp, err)
	}
	for _, req := range []struct{ method, query string }{
		{http.MethodGet, "?transport=sse"},
		{http.MethodPost, "?transport=longpoll"},
	} {
		r, _ := http.NewRequestWithContext(ctxT(t), req.method, url+req.query, nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Accept", "text/event-stream")
		resp, err := insecure.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s %s from %s: %s, want 403", req.method, req.query, origin, resp.Status)
		}
	}
}

// Named in Options.TrustedProxies, nginx need not pass the browser's Host:
// with its default Host, the route takes the scheme and host the browser
// used from X-Forwarded-Proto and X-Forwarded-Host, and every transport
// works from the page's origin again.
func TestNginxTrustedProxyWithDefaultHost(t *testing.T) {
	b := newBackend(t, realtime.Options{TrustedProxies: loopbackProxy})
	site := edit(t, readmeNginx(t), "proxy_set_header Host $http_host;", "")
	url := startNginx(t, site, b.addr)
	for _, k := range kinds {
		t.Run(string(k.kind), func(t *testing.T) {
			live(t, dial(t, url, k.kind, rtclient.Options{Header: browserHeader(url)}), 5)
		})
	}
	t.Run("foreign origin", func(t *testing.T) { refused(t, url, "http://evil.example") })
}

// When nginx terminates TLS, the page's origin is https://... and the
// route is reached over plain HTTP: the origin check refuses the page
// unless nginx is a trusted proxy, whose X-Forwarded-Proto says https.
// Then everything works over TLS, WebSocket (wss) included.
func TestNginxTerminatingTLS(t *testing.T) {
	t.Run("untrusted", func(t *testing.T) {
		b := newBackend(t, realtime.Options{})
		url := startNginxTLS(t, readmeNginx(t), b.addr, true)
		refused(t, url, url)
	})
	t.Run("trusted", func(t *testing.T) {
		b := newBackend(t, realtime.Options{TrustedProxies: loopbackProxy})
		url := startNginxTLS(t, readmeNginx(t), b.addr, true)
		for _, k := range kinds {
			t.Run(string(k.kind), func(t *testing.T) {
				live(t, dial(t, url, k.kind, rtclient.Options{Header: browserHeader(url), HTTPClient: insecure}), 5)
			})
		}
		refused(t, url, "http://"+strings.TrimPrefix(url, "https://")) // the same host over plain HTTP is another origin
	})
}
