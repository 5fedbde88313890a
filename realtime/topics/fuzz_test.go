package topics_test

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"github.com/rtkit/rtkit/realtime/topics"
)

// FuzzEnvelope decodes any bytes as a topic envelope, as Go consumers
// (rtclient users, the examples' tests) decode what a server sends. It
// must not panic; what decodes re-encodes to JSON that decodes again, to
// the same encoding (one round trip normalises, the next changes
// nothing), no more than six times the input (JSON's longest escape),
// with UTF-8 strings.
func FuzzEnvelope(f *testing.F) {
	for _, s := range []string{
		`{"topic":"room:general","seq":7,"data":"hello"}`,
		`{"topic":"t","seq":1,"binary":"AAEC"}`,
		`{"topic":"t","presence":"join","member":{"id":"c1","info":{"name":"ada"}}}`,
		`{"topic":"t","gap":{"after":3}}`,
		`{"topic":"t","data":"\ud800","binary":"!!"}`,
		`{"topic":1}`, `{"seq":-1}`, `{"member":{"info":[1,2,}}`, `null`, `[]`, ``,
		`{"topic":"<script>","data":"a\u0000b"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var e1 topics.Envelope
		if json.Unmarshal(in, &e1) != nil {
			return
		}
		m1, err := json.Marshal(e1)
		if err != nil {
			t.Fatalf("%q decoded, but does not encode: %v", in, err)
		}
		if len(m1) > 6*len(in)+64 {
			t.Fatalf("%d bytes from %d", len(m1), len(in))
		}
		if !utf8.ValidString(e1.Topic) || e1.Data != nil && !utf8.ValidString(*e1.Data) || !utf8.ValidString(e1.Presence) {
			t.Fatalf("not UTF-8: %+v", e1)
		}
		var e2 topics.Envelope
		if err := json.Unmarshal(m1, &e2); err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", m1, err)
		}
		m2, err := json.Marshal(e2)
		if err != nil || !bytes.Equal(m1, m2) {
			t.Fatalf("round trips differ: %q then %q (%v)", m1, m2, err)
		}
	})
}
