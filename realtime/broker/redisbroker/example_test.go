package redisbroker_test

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
)

// Topics on Redis: every node that uses the same Redis and prefix shares
// the topics, their history and presence. exampleRedis is the address of
// a redis-server, such as "localhost:6379".
func ExampleNew() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The broker uses the client but does not own it: close the broker
	// first, then the client.
	client := redis.NewClient(&redis.Options{Addr: exampleRedis})
	defer client.Close()
	// Brokers with the same prefix form one cluster; another prefix keeps
	// an application apart from the others on a shared Redis.
	b, err := redisbroker.New(client, &redisbroker.Options{Prefix: "example"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()

	ts := topics.New(b)
	for _, s := range []string{"first", "second"} {
		if _, err := ts.Publish(ctx, "news", realtime.Text(s)); err != nil {
			fmt.Println(err)
			return
		}
	}
	h, err := b.History(ctx, "news", 0, 0)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range h.Entries {
		fmt.Println(e.Seq, e.Text())
	}
	fmt.Println("last:", h.Last)
	// Output:
	// 1 first
	// 2 second
	// last: 2
}
