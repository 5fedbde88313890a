package main

import (
	"errors"
	"math"

	"github.com/rtkit/rtkit/realtime"
)

// request is the body of a POST: {"op": "add", "a": 1, "b": 2}.
type request struct {
	Op string  `json:"op"` // add, sub, mul or div
	A  float64 `json:"a"`
	B  float64 `json:"b"`
}

// answer is the response to a valid request.
type answer struct {
	Result float64 `json:"result"`
}

// Application close codes (4000–4999), which request/response answers
// with 400 and {"error": reason, "code": code}; on a WebSocket they would
// be its close frame.
const (
	codeMalformed = 4400 // the body is not the JSON of a request
	codeInvalid   = 4422 // well-formed, but not something to compute
)

// calculator answers one request per message. Only Message is needed:
// request/response runs Open and Close around it anyway.
var calculator = realtime.Funcs{
	OnMessage: func(c *realtime.Conn, m realtime.Message) error {
		var req request
		if err := m.Decode(&req); err != nil {
			if errors.Is(err, realtime.ErrMalformed) {
				return &realtime.CloseError{Code: codeMalformed, Reason: "malformed JSON: want {\"op\",\"a\",\"b\"}", Err: err}
			}
			return err // anything else is ours: 500, logged, not shown
		}
		result, err := compute(req)
		if err != nil {
			return &realtime.CloseError{Code: codeInvalid, Reason: err.Error()}
		}
		return c.SendJSON(answer{Result: result})
	},
}

func compute(r request) (float64, error) {
	var x float64
	switch r.Op {
	case "add":
		x = r.A + r.B
	case "sub":
		x = r.A - r.B
	case "mul":
		x = r.A * r.B
	case "div":
		if r.B == 0 {
			return 0, errors.New("division by zero")
		}
		x = r.A / r.B
	default:
		return 0, errors.New(`op must be "add", "sub", "mul" or "div"`)
	}
	if math.IsInf(x, 0) {
		return 0, errors.New("result out of range")
	}
	return x, nil
}
