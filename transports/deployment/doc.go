// Package deployment tests rtkit's routes served the way the README's
// "Production" section says to serve them, on real sockets: under an
// http.Server with production timeouts, over TLS and HTTP/2 in Chromium
// (ten SSE streams from one page, beyond HTTP/1.1's six connections per
// origin), and behind nginx with the README's configuration (WebSocket,
// SSE with POST-backs and long-polling). The nginx tests start Debian's
// nginx binary and skip with a message where it is not installed; the
// browser tests skip where Chromium is not. It has no code of its own
// besides its tests.
package deployment
