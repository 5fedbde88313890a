package realtime_test

import (
	"net/http"
	"testing"

	"github.com/rtkit/rtkit/realtime"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    http.Header
		want string
	}{
		{"none", http.Header{}, ""},
		{"header", http.Header{"Authorization": {"Bearer s3cret"}}, "s3cret"},
		{"header, any case", http.Header{"Authorization": {"bearer s3cret"}}, "s3cret"},
		{"basic is not bearer", http.Header{"Authorization": {"Basic eDp5"}}, ""},
		{"subprotocol", http.Header{"Sec-Websocket-Protocol": {"rtkit, " + realtime.BearerSubprotocol("tok/+=en")}}, "tok/+=en"},
		{"bad base64", http.Header{"Sec-Websocket-Protocol": {"rtkit, rtkit.bearer.%%%"}}, ""},
	} {
		r, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
		r.Header = tc.h
		if got := realtime.BearerToken(r); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
