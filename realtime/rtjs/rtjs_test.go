package rtjs_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/rtkit/rtkit/realtime/rtjs"
)

func TestHandler(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle(rtjs.Path, rtjs.Handler())
	get := func(path string, h http.Header) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		for k, v := range h {
			r.Header[k] = v
		}
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		return w
	}
	for _, name := range rtjs.Names() {
		w := get(rtjs.Path+name, nil)
		src, ok := rtjs.Source(name)
		if w.Code != http.StatusOK || !ok || w.Body.String() != string(src) {
			t.Fatalf("%s: %d, source found %v", name, w.Code, ok)
		}
		if ct := w.Header().Get("Content-Type"); name[len(name)-3:] == ".js" && ct != "text/javascript; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
		if w.Header().Get("Cache-Control") != "no-cache" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", name, w.Header())
		}
		etag := w.Header().Get("ETag")
		if w := get(rtjs.Path+name, http.Header{"If-None-Match": {etag}}); etag == "" || w.Code != http.StatusNotModified {
			t.Errorf("%s: revalidation with %q got %d", name, etag, w.Code)
		}
	}
	for _, p := range []string{rtjs.Path, rtjs.Path + "nope.js", rtjs.Path + "x/rtkit.js"} {
		if w := get(p, nil); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, w.Code)
		}
	}
	// Not through a mux that cleans paths.
	w := httptest.NewRecorder()
	rtjs.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/rtkit/../rtjs.go", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("traversal: %d", w.Code)
	}
	// Under another prefix.
	h := http.StripPrefix("/static/", rtjs.Handler())
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/static/rtkit.js", nil))
	if w.Code != http.StatusOK {
		t.Errorf("under StripPrefix: %d", w.Code)
	}
}
