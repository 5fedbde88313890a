package topics_test

import (
	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/testing/realtimetest"
)

// inMemory is the options of a route that the tests reach through
// realtimetest.DialRoute only.
var inMemory = &realtime.Options{Transports: []realtime.Transport{realtimetest.Memory}}
