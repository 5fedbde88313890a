package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/topics"
)

// The token is taken from the Authorization header or the bearer
// subprotocol only. In the query (?token=), where access logs would keep
// it, it is ignored: every transport answers 401.
func TestTokenNeverFromURL(t *testing.T) {
	n := startNode(t, topics.NewMemoryBroker(nil), newAuth(""))
	token := n.login(t, "ada")
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	inURL := "?token=" + url.QueryEscape(token)

	wsURL := "ws" + strings.TrimPrefix(n.url, "http") + "/chat"
	for _, tc := range []struct {
		name string
		url  string
		hdr  http.Header
		want int
	}{
		{"query", wsURL + inURL, nil, http.StatusUnauthorized},
		{"header", wsURL, bearer, http.StatusSwitchingProtocols},
		{"subprotocol", wsURL, http.Header{"Sec-WebSocket-Protocol": {realtime.Subprotocol + ", " + realtime.BearerSubprotocol(token)}}, http.StatusSwitchingProtocols},
	} {
		t.Run("websocket/"+tc.name, func(t *testing.T) {
			ws, resp, err := websocket.DefaultDialer.Dial(tc.url, tc.hdr)
			if ws != nil {
				ws.Close()
			}
			if resp == nil {
				t.Fatalf("dial: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	for _, tc := range []struct {
		name, method, query string
		hdr                 http.Header
	}{
		{"negotiation", http.MethodGet, "", http.Header{"Accept": {"application/json"}}},
		{"sse", http.MethodGet, "transport=sse", http.Header{"Accept": {"text/event-stream"}}},
		{"longpoll", http.MethodPost, "transport=longpoll", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, inQuery := range []bool{true, false} {
				q := tc.query
				if inQuery {
					q = strings.TrimPrefix(q+"&token="+url.QueryEscape(token), "&")
				}
				req, _ := http.NewRequestWithContext(ctxT(t), tc.method, n.url+"/chat?"+q, nil)
				for k, v := range tc.hdr {
					req.Header[k] = v
				}
				want := http.StatusUnauthorized
				if !inQuery {
					req.Header.Set("Authorization", "Bearer "+token)
					want = http.StatusOK
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close() // an SSE stream ends here
				if resp.StatusCode != want {
					t.Fatalf("token in query=%v: status %d, want %d", inQuery, resp.StatusCode, want)
				}
			}
		})
	}
}
