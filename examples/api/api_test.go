package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// The handler in memory: an answer, or a close with an application code.
func TestCalculator(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := realtimetest.Dial(calculator, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SendJSON(request{Op: "mul", A: 6, B: 7})
	var a answer
	if err := c.ReceiveJSON(ctx, &a); err != nil || a.Result != 42 {
		t.Fatalf("got %+v, %v", a, err)
	}
	c.SendText(`{"op":`)
	_, err = c.Receive(ctx)
	if realtime.CloseStatus(err) != codeMalformed {
		t.Fatalf("malformed: %v", err)
	}
	<-c.Done()
	if cause := c.Conn().Cause(); !errors.Is(cause, realtime.ErrMalformed) {
		t.Fatalf("cause %v", cause)
	}
}

// The program over HTTP.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	urls := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, "127.0.0.1:0", func(u string) { urls <- u }) }()
	base := <-urls

	do := func(method, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+"calc", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type reply struct {
		Result *float64 `json:"result"`
		Error  string   `json:"error"`
		Code   int      `json:"code"`
	}
	for _, tc := range []struct {
		method, body string
		status       int
		want         reply
	}{
		{"POST", `{"op":"div","a":1,"b":4}`, 200, reply{Result: ptr(0.25)}},
		{"POST", `{"op":"sub","a":1,"b":4}`, 200, reply{Result: ptr(-3)}},
		{"POST", `{"op":"add","a":1,`, 400, reply{Code: codeMalformed}},
		{"POST", `[1,2]`, 400, reply{Code: codeMalformed}},
		{"POST", `{"op":"div","a":1,"b":0}`, 400, reply{Code: codeInvalid, Error: "division by zero"}},
		{"POST", `{"op":"pow","a":1,"b":0}`, 400, reply{Code: codeInvalid}},
		{"PUT", `{"op":"add","a":1,"b":4}`, 405, reply{}},
		{"DELETE", ``, 405, reply{}},
	} {
		status, body := do(tc.method, tc.body)
		var got reply
		if err := json.Unmarshal([]byte(body), &got); err != nil || status != tc.status {
			t.Fatalf("%s %s: %d %s", tc.method, tc.body, status, body)
		}
		switch {
		case tc.want.Result != nil:
			if got.Result == nil || *got.Result != *tc.want.Result {
				t.Fatalf("%s: %s", tc.body, body)
			}
		case tc.want.Code != 0:
			if got.Code != tc.want.Code || got.Error == "" || (tc.want.Error != "" && got.Error != tc.want.Error) {
				t.Fatalf("%s: %s", tc.body, body)
			}
		default:
			if got.Error == "" {
				t.Fatalf("%s: %s", tc.method, body)
			}
		}
	}

	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), `fetch("/calc"`) {
		t.Fatalf("page: %s", resp.Status)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func ptr(f float64) *float64 { return &f }
