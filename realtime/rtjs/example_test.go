package rtjs_test

import (
	"bufio"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/rtkit/rtkit/realtime/rtjs"
)

// The browser client is served next to the routes, at rtjs.Path, and a
// page imports it from there as an ES module.
func ExampleHandler() {
	mux := http.NewServeMux()
	mux.Handle(rtjs.Path, rtjs.Handler())
	srv := httptest.NewServer(mux)
	defer srv.Close()

	resp, err := http.Get(srv.URL + rtjs.Path + "rtkit.js")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode, resp.Header.Get("Content-Type"))
	first := bufio.NewScanner(resp.Body)
	first.Scan()
	fmt.Println(first.Text())
	// Output:
	// 200 text/javascript; charset=utf-8
	// // rtkit.js: the browser client of rtkit routes (see transports/PROTOCOL.md).
}
