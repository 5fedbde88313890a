package rtjs

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Path is where Handler expects to be mounted and where pages import the
// client from:
//
//	mux.Handle(rtjs.Path, rtjs.Handler())
//
//	import {RealtimeClient} from "/rtkit/rtkit.js";
//
// Handler also works under another prefix when wrapped in
// http.StripPrefix.
const Path = "/rtkit/"

//go:embed rtkit.js rtkit.d.ts react.js react.d.ts
var files embed.FS

// asset is one embedded file with what its responses need.
type asset struct {
	name        string
	contentType string
	etag        string
	data        []byte
}

var assets = func() map[string]*asset {
	m := make(map[string]*asset)
	entries, _ := fs.ReadDir(files, ".")
	for _, e := range entries {
		data, err := files.ReadFile(e.Name())
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(data)
		ct := "text/javascript; charset=utf-8"
		if strings.HasSuffix(e.Name(), ".d.ts") {
			ct = "application/typescript; charset=utf-8"
		}
		m[e.Name()] = &asset{
			name:        e.Name(),
			contentType: ct,
			etag:        `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`,
			data:        data,
		}
	}
	return m
}()

// Names lists the files Handler serves: the client module rtkit.js, the
// React hook react.js and their TypeScript declarations.
func Names() []string {
	return []string{"rtkit.js", "rtkit.d.ts", "react.js", "react.d.ts"}
}

// Source returns the content of one of the files Names lists, for servers
// that bundle or inline the client themselves; ok is false for other
// names.
func Source(name string) (src []byte, ok bool) {
	a, ok := assets[name]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), a.data...), true
}

// Handler serves the browser client: rtkit.js, rtkit.d.ts, react.js and
// react.d.ts under Path (or under whatever prefix http.StripPrefix
// removed). Scripts are served as "text/javascript; charset=utf-8", which
// module scripts require, with "X-Content-Type-Options: nosniff".
//
// The URLs are not versioned, so a deploy must reach pages at once: the
// responses carry "Cache-Control: no-cache" and a strong ETag of the
// content, so that browsers revalidate on each load and get a bodiless
// 304 while the file is unchanged. Other paths get 404, other methods 405.
func Handler() http.Handler {
	return http.HandlerFunc(serve)
}

func serve(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimPrefix(r.URL.Path, Path)
	name = strings.TrimPrefix(name, "/")
	if name != path.Base(name) {
		http.NotFound(w, r)
		return
	}
	a, ok := assets[name]
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", a.etag)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, a.name, time.Time{}, strings.NewReader(string(a.data)))
}
