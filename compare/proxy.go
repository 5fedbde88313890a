package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/rtclient"
)

// Two proxies of the kinds that break realtime transports in the field,
// both Go reverse proxies on loopback in front of the rtkit route:
//
//   - noUpgrade answers 403 to any request with an Upgrade header (a
//     corporate proxy or a load balancer without WebSocket support) and
//     forwards the rest, streaming responses as it gets them;
//   - buffering forwards upgrades (a WebSocket passes through it) but holds
//     every other response body until the upstream response has ended, as
//     a proxy does that buffers or scans responses before passing them on.

// newReverseProxy returns a reverse proxy to target whose idle upstream
// connections close with close.
func newReverseProxy(target *url.URL) (rp *httputil.ReverseProxy, tr *http.Transport) {
	tr = &http.Transport{}
	rp = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(target); pr.Out.Host = pr.In.Host },
		Transport: tr,
		ErrorLog:  nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return rp, tr
}

func noUpgradeProxy(target *url.URL) (http.Handler, func()) {
	rp, tr := newReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			http.Error(w, "upgrades are not allowed", http.StatusForbidden)
			return
		}
		rp.ServeHTTP(w, r)
	}), tr.CloseIdleConnections
}

func bufferingProxy(target *url.URL) (http.Handler, func()) {
	rp, tr := newReverseProxy(target)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			rp.ServeHTTP(w, r)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = target.Scheme, target.Host
		for _, h := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade"} {
			out.Header.Del(h)
		}
		resp, err := tr.RoundTrip(out)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body) // the whole response, or nothing
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			switch k {
			case "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length":
				continue
			}
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(body)
	}), tr.CloseIdleConnections
}

// proxyResult is one transport's fate behind one proxy.
type proxyResult struct {
	ok  bool
	err error
}

// tryThrough connects to url with the client forced onto transport name,
// sends one message and waits for its echo, all within short timeouts.
func tryThrough(ctx context.Context, cfg *Config, rawURL, name string) proxyResult {
	ctx, cancel := context.WithTimeout(ctx, 3*cfg.ProxyTimeout)
	defer cancel()
	msg := []byte("through the proxy")
	if name == "http" {
		// rtclient speaks the session transports; request/response is a
		// plain POST.
		client := &http.Client{Transport: &http.Transport{}, Timeout: cfg.ProxyTimeout}
		defer client.CloseIdleConnections()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(msg))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := client.Do(req)
		if err != nil {
			return proxyResult{err: err}
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return proxyResult{err: err}
		}
		if resp.StatusCode != http.StatusOK || !bytes.Equal(b, msg) {
			return proxyResult{err: fmt.Errorf("HTTP %s: %q", resp.Status, b)}
		}
		return proxyResult{ok: true}
	}
	c, err := rtclient.Dial(ctx, rawURL, &rtclient.Options{
		Transports:        []realtime.Kind{realtime.Kind(name)},
		NoNegotiate:       true,
		UpgradeTimeout:    cfg.ProxyTimeout,
		FirstEventTimeout: cfg.ProxyTimeout,
		MaxRetries:        -1,
		Logger:            quietLogger(),
	})
	if err != nil {
		return proxyResult{err: err}
	}
	defer c.Close(realtime.CloseNormal, "")
	if err := c.Send(ctx, realtime.Text(string(msg))); err != nil {
		return proxyResult{err: err}
	}
	rctx, rcancel := context.WithTimeout(ctx, cfg.ProxyTimeout)
	defer rcancel()
	m, err := c.Receive(rctx)
	if err != nil {
		return proxyResult{err: err}
	}
	if !bytes.Equal(m.Data, msg) {
		return proxyResult{err: fmt.Errorf("echo %q", m.Data)}
	}
	return proxyResult{ok: true}
}

// measureProxies tries every rtkit transport directly (which must work)
// and through each proxy.
func measureProxies(ctx context.Context, cfg *Config, rows []*Row) error {
	s, err := newRtkitServer()
	if err != nil {
		return err
	}
	defer s.Close()
	target, _ := url.Parse(s.URL)
	nu, nuClose := noUpgradeProxy(target)
	bu, buClose := bufferingProxy(target)
	defer nuClose()
	defer buClose()
	pNU, err := startServer(nu)
	if err != nil {
		return err
	}
	defer pNU.Close()
	pBU, err := startServer(bu)
	if err != nil {
		return err
	}
	defer pBU.Close()
	for _, r := range rows {
		if r.Baseline {
			continue
		}
		progress(cfg, "proxies: %s", r.Name)
		if res := tryThrough(ctx, cfg, s.URL, r.Name); !res.ok {
			return fmt.Errorf("%s does not work without a proxy: %w", r.Name, res.err)
		}
		for _, p := range []struct {
			name string
			url  string
			dst  *string
		}{{"no-upgrade", pNU.URL, &r.NoUpgradeProxy}, {"buffering", pBU.URL, &r.BufferingProxy}} {
			t0 := time.Now()
			res := tryThrough(ctx, cfg, p.url, r.Name)
			took := time.Since(t0).Round(time.Millisecond)
			*p.dst = "no"
			if res.ok {
				*p.dst = "yes"
			} else {
				r.ProxyNotes = append(r.ProxyNotes, fmt.Sprintf("%s proxy: %v (after %v)", p.name, res.err, took))
			}
			progress(cfg, "proxies: %s through the %s proxy: %s (%v)", r.Name, p.name, *p.dst, took)
		}
	}
	return nil
}
