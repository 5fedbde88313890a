package topics

import (
	"bytes"
	"encoding/json"
	"testing"
)

// A presence diff spliced into its envelope is byte for byte what
// decoding it and encoding the envelope gives, and data that is not a
// diff as publishDiffs writes it is not spliced.
func TestSpliceDiff(t *testing.T) {
	diffs := []presenceDiff{
		{Joins: []Member{{ID: "a"}}},
		{Leaves: []Member{{ID: "b", Info: json.RawMessage(`{"name":"<bob> & \u00e9"}`)}}},
		{Joins: []Member{{ID: "c", Info: json.RawMessage(`"x"`)}, {ID: "d"}}, Leaves: []Member{{ID: "e", Info: json.RawMessage(`[1,2]`)}}},
	}
	for _, d := range diffs {
		data, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		env := Envelope{Topic: "room:\"<1>\"", Seq: 42, Presence: "diff"}
		got, ok := spliceDiff(env, data)
		if !ok {
			t.Fatalf("%s: not spliced", data)
		}
		env.Joins, env.Leaves = d.Joins, d.Leaves
		want, _ := json.Marshal(env)
		if !bytes.Equal(got, want) {
			t.Errorf("spliced %s\nwant    %s", got, want)
		}
	}
	for _, data := range []string{
		`{"presence":"join","member":{"id":"a"}}`, // a legacy event
		`{"joins":[{"id":"a"}]`,                   // cut short
		`{"joins":[{"id":"a"}]}x`,
		``,
	} {
		if b, ok := spliceDiff(Envelope{Topic: "t", Presence: "diff"}, []byte(data)); ok {
			t.Errorf("%q spliced: %s", data, b)
		}
	}
}
