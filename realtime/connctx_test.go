package realtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// The connection's context carries the request's values, ends with the
// connection, and contexts derived from it (an agent call's timeout) end
// with it too, through AfterFunc rather than a goroutine of their own.
func TestConnContext(t *testing.T) {
	x := &connContext{values: context.WithValue(context.Background(), ctxKey{}, "ada")}
	if x.Value(ctxKey{}) != "ada" || x.Err() != nil {
		t.Fatalf("value %v, err %v", x.Value(ctxKey{}), x.Err())
	}
	derived, cancel := context.WithTimeout(x, time.Hour)
	defer cancel()
	stopped, stop := context.WithCancel(x)
	stop() // derived and done with before the end: its AfterFunc is removed
	if n := len(x.after); n != 1 {
		t.Fatalf("%d functions registered, want the live derived context's only", n)
	}
	x.cancel()
	select {
	case <-derived.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a derived context outlived the connection")
	}
	if !errors.Is(derived.Err(), context.Canceled) || !errors.Is(x.Err(), context.Canceled) {
		t.Fatalf("errors %v, %v", derived.Err(), x.Err())
	}
	<-x.Done()
	_ = stopped
	// Derived after the end: done at once.
	late, cancel2 := context.WithCancel(x)
	defer cancel2()
	select {
	case <-late.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a context derived after the end is not done")
	}
}
