package longpoll_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/transports/longpoll"
)

// FuzzPollAck sends polls with any Realtime-Ack header (the highest seq a
// client says it received) to a session that has sent three messages. It
// must not panic or answer 5xx: a value that is not a decimal integer is
// refused with 400, and any other, even beyond what was sent, is a poll.
// The polls run in process, each with a context that ends at once, so
// that no poll is held.
func FuzzPollAck(f *testing.F) {
	for _, s := range []string{"", "0", "1", "3", "4", "-1", "+1", "01", " 1", "1.5", "0x3", "18446744073709551615", "18446744073709551616", "1e3"} {
		f.Add(s)
	}
	rt := realtime.NewRoute(realtime.Funcs{
		OnOpen: func(c *realtime.Conn) error {
			c.SendText("a")
			c.SendText("b")
			return c.SendText("c")
		},
	}, &realtime.Options{Transports: []realtime.Transport{longpoll.New(longpoll.Options{})}})
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		rt.Shutdown(ctx)
	})
	w := httptest.NewRecorder()
	rt.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/?transport=longpoll", nil))
	var open struct{ Token string }
	if err := json.Unmarshal(w.Body.Bytes(), &open); err != nil || open.Token == "" {
		f.Fatalf("open: %d %s", w.Code, w.Body)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	f.Fuzz(func(t *testing.T, ack string) {
		r := httptest.NewRequest(http.MethodGet, "/?transport=longpoll", nil).WithContext(gone)
		r.Header.Set(realtime.HeaderToken, open.Token)
		if ack != "" {
			r.Header[longpoll.HeaderAck] = []string{ack}
		}
		w := httptest.NewRecorder()
		rt.ServeHTTP(w, r)
		_, err := strconv.ParseUint(ack, 10, 64)
		switch {
		case w.Code >= 500:
			t.Fatalf("ack %q: %d %s", ack, w.Code, w.Body)
		case ack != "" && err != nil:
			if w.Code != http.StatusBadRequest {
				t.Fatalf("ack %q: %d, want 400", ack, w.Code)
			}
		case w.Code != http.StatusOK:
			t.Fatalf("ack %q: %d %s", ack, w.Code, w.Body)
		}
	})
}
