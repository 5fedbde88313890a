package main

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime"
)

// auth issues and checks the chat's tokens: "name.signature", signed with
// a key that lives as long as the process. A real application would use
// its own sessions or OIDC; what matters here is that the user's name
// comes from the middleware, never from what the client claims.
type auth struct{ key []byte }

// newAuth returns the token issuer. Every node of one chat must share the
// secret (CHAT_SECRET); without one, a random key serves a single process.
func newAuth(secret string) *auth {
	if secret != "" {
		return &auth{key: []byte(secret)}
	}
	key := make([]byte, 32)
	rand.Read(key)
	return &auth{key: key}
}

type userKey struct{}

// userOf returns the user the middleware established for the connection.
func userOf(c *realtime.Conn) string { s, _ := c.Value(userKey{}).(string); return s }

// identity binds session tokens to the user (realtime.Options.Identity).
func identity(r *http.Request) string { s, _ := r.Context().Value(userKey{}).(string); return s }

func (a *auth) sign(name string) string {
	mac := hmac.New(sha256.New, a.key)
	mac.Write([]byte(name))
	return base64.RawURLEncoding.EncodeToString([]byte(name)) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (a *auth) verify(token string) (string, bool) {
	enc, _, ok := strings.Cut(token, ".")
	if !ok {
		return "", false
	}
	name, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || !hmac.Equal([]byte(a.sign(string(name))), []byte(token)) {
		return "", false
	}
	return string(name), true
}

// middleware runs before the upgrade: no valid token, 401, and the
// handler never sees the request. The token comes only from the
// Authorization header or the WebSocket subprotocol (realtime.BearerToken,
// what rtkit's clients send), never from the URL: URLs end up in access
// logs, proxies' logs and browser history, so a ?token= is ignored.
func (a *auth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name, ok := a.verify(realtime.BearerToken(r))
		if !ok {
			realtime.WriteError(w, http.StatusUnauthorized, "chat: sign in first")
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, name)))
	})
}

// login hands out a token for a name: POST {"name": "ada"}.
func (a *auth) login(w http.ResponseWriter, r *http.Request) {
	var in struct{ Name string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<10)).Decode(&in); err != nil {
		realtime.WriteError(w, http.StatusBadRequest, "chat: want {\"name\": \"...\"}")
		return
	}
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 32 {
		realtime.WriteError(w, http.StatusBadRequest, "chat: a name has 1 to 32 characters")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"name": in.Name, "token": a.sign(in.Name)})
}
