package main

import (
	"github.com/nats-io/nats.go"
	"github.com/redis/go-redis/v9"

	"github.com/rtkit/rtkit/realtime/broker/natsbroker"
	"github.com/rtkit/rtkit/realtime/broker/redisbroker"
	"github.com/rtkit/rtkit/realtime/topics"
)

// openNATS connects to a NATS server with JetStream. The client does not
// buffer publishes while disconnected (ReconnectBufSize -1): a message
// either reaches the server or its sender hears an error.
func openNATS(url string, s settings) (topics.Broker, func(), error) {
	nc, err := nats.Connect(url, nats.Name("rtkit chat"), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, nil, err
	}
	b, err := natsbroker.New(nc, &natsbroker.Options{History: s.history, PresenceTTL: s.presenceTTL})
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return b, func() { b.Close(); nc.Close() }, nil
}

// openRedis connects to a Redis server.
func openRedis(url string, s settings) (topics.Broker, func(), error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	client := redis.NewClient(opt)
	b, err := redisbroker.New(client, &redisbroker.Options{History: s.history, MemberTTL: s.presenceTTL})
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return b, func() { b.Close(); client.Close() }, nil
}
