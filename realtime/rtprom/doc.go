// Package rtprom exports what rtkit routes report (realtime.Observer) as
// Prometheus metrics, on the registry the application already has:
//
//	reg := prometheus.NewRegistry()
//	obs, err := rtprom.New(reg, nil)
//	if err != nil {
//		return err // the names are taken on reg
//	}
//	o := transports.Messaging
//	o.Observer = obs
//	mux.Handle("/chat", realtime.NewRoute(chat, &o))
//	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
//
// To count broker calls too, wrap the broker with topics.Observe(b, obs).
//
// # Metrics
//
// Every metric is labelled with route (realtime.Options.Name, or the
// ServeMux pattern) and, where there is one, transport ("websocket",
// "sse", "longpoll", "http", "memory"). The only other labels are small
// enumerations: the close code, the HTTP status of a refusal, the
// overflow policy, the broker operation and the kind of handler failure.
// No label ever holds a connection id, a topic name or anything a client
// chooses, so the number of series stays bounded.
//
//	rtkit_connections{route,transport}                    gauge      live connections
//	rtkit_connections_opened_total{route,transport}       counter    connections opened (the transport a client ended on, after negotiation and fallbacks)
//	rtkit_connections_closed_total{route,transport,code}  counter    connections closed, by close code (1000, 1001, 1006, 1008, 1011, 4000...)
//	rtkit_connection_duration_seconds{route,transport}    histogram  how long connections lived
//	rtkit_messages_received_total{route,transport}        counter    messages from clients
//	rtkit_received_bytes_total{route,transport}           counter    their payload bytes
//	rtkit_messages_sent_total{route,transport}            counter    messages written to clients
//	rtkit_sent_bytes_total{route,transport}               counter    their payload bytes
//	rtkit_send_batch_messages{route,transport}            histogram  messages a writer took from the send queue at once: the queue's depth
//	rtkit_overflows_total{route,transport,policy}         counter    times a full send queue applied its policy (close, drop-oldest, drop-newest, block)
//	rtkit_inbox_full_total{route,transport}               counter    times a full inbox paused the reader or refused a POST with 429
//	rtkit_catchup_messages{route,transport}               histogram  messages a topic catch-up streamed
//	rtkit_resumes_total{route,transport}                  counter    sessions resumed by a new request (an SSE stream reconnected)
//	rtkit_gaps_total{route,transport}                     counter    clients told that messages were lost
//	rtkit_session_expiries_total{route,transport}         counter    sessions not resumed within the resume window
//	rtkit_refused_total{route,transport,code}             counter    requests refused, by HTTP status (403 origin, 429 client cap, 503 full or closing)
//	rtkit_negotiations_total{route}                       counter    negotiation GETs (clients asking which transports the route serves)
//	rtkit_relay_duration_seconds{route}                   histogram  session requests forwarded to another node
//	rtkit_relay_errors_total{route}                       counter    forwards that failed
//	rtkit_handler_errors_total{route,transport,kind}      counter    handler callbacks that returned an error (kind="error") or panicked (kind="panic")
//	rtkit_broker_duration_seconds{op}                     histogram  broker calls (publish, history, subscribe), through topics.Observe
//	rtkit_broker_errors_total{op}                         counter    broker calls that failed
//
// Options.Namespace replaces the "rtkit" prefix; Options.ConstLabels adds
// labels of the application's own (a service name, say).
//
// # Cost
//
// Observe runs on the connections' data paths. Each event costs one
// lookup in a copy-on-write map of the (route, transport) pairs seen so
// far, and atomic adds on series resolved once per pair; events that
// carry another label (a close code, a policy) look that series up in
// the vector. BenchmarkHook in this package measures echo and fan-out
// with the observer set against unset.
package rtprom
