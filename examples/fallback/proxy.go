package main

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/rtkit/rtkit/realtime"
)

// blockUpgrades refuses every protocol upgrade with 403, as a proxy or
// firewall that does not pass WebSockets does. The browser client falls
// back at once on a refused upgrade.
func blockUpgrades(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			realtime.WriteError(w, http.StatusForbidden, "fallback: upgrades are blocked (-block-upgrades)")
			return
		}
		h.ServeHTTP(w, r)
	})
}

// bufferStreams holds each SSE response, headers included, until it ends,
// as a proxy that buffers responses does. An event stream never ends on
// its own, so the client hears nothing, gives up after its
// firstEventTimeout and moves to long-polling, whose responses are short.
func bufferStreams(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet ||
			!strings.Contains(r.Header.Get("Accept"), "text/event-stream") && r.URL.Query().Get("transport") != "sse" {
			h.ServeHTTP(w, r)
			return
		}
		bw := &bufferedWriter{header: http.Header{}, code: http.StatusOK}
		h.ServeHTTP(bw, r) // returns when the client has gone
		for k, v := range bw.header {
			w.Header()[k] = v
		}
		w.WriteHeader(bw.code)
		w.Write(bw.body.Bytes())
	})
}

// bufferedWriter keeps a whole response. Its Flush does nothing: that is
// the point.
type bufferedWriter struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(code int)        { b.code = code }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }
func (b *bufferedWriter) Flush()                      {}
