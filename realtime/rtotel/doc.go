// Package rtotel records what rtkit routes report (realtime.Observer) as
// OpenTelemetry metrics, through any metric.MeterProvider, so that any
// exporter (OTLP, Prometheus, stdout) carries them:
//
//	obs, err := rtotel.New(provider, nil) // an sdk/metric MeterProvider, or otel.GetMeterProvider()
//	if err != nil {
//		return err
//	}
//	o := transports.Messaging
//	o.Observer = obs
//	mux.Handle("/chat", realtime.NewRoute(chat, &o))
//
// To record broker calls too, wrap the broker with topics.Observe(b, obs).
//
// # Instruments
//
// Names follow the semantic conventions' style: dot-separated
// namespaces, units in the unit field (UCUM: "s", "By", "{message}"),
// no "_total". The meter is named ScopeName.
//
//	rtkit.connection.count     UpDownCounter  {connection}  live connections
//	rtkit.connection.opened    Counter        {connection}  connections opened, on the transport the client ended up on
//	rtkit.connection.closed    Counter        {connection}  connections closed; rtkit.close.code
//	rtkit.connection.duration  Histogram      s             how long connections lived
//	rtkit.message.received     Counter        {message}     messages from clients
//	rtkit.message.sent         Counter        {message}     messages written to clients
//	rtkit.io                   Counter        By            payload bytes; network.io.direction = "receive" or "transmit"
//	rtkit.send.batch           Histogram      {message}     messages a writer took from the send queue at once: its depth
//	rtkit.overflow             Counter        {overflow}    times a full send queue applied its policy; rtkit.overflow.policy
//	rtkit.inbox.full           Counter        {event}       times a full inbox paused the reader or refused a POST
//	rtkit.catchup.size         Histogram      {message}     messages a topic catch-up streamed
//	rtkit.session.resumed      Counter        {session}     sessions resumed by a new request
//	rtkit.session.gap          Counter        {gap}         clients told that messages were lost
//	rtkit.session.expired      Counter        {session}     sessions not resumed within the resume window
//	rtkit.request.refused      Counter        {request}     refused requests; http.response.status_code
//	rtkit.negotiation.count    Counter        {request}     negotiation requests
//	rtkit.relay.duration       Histogram      s             session requests forwarded to another node; error.type when one failed
//	rtkit.handler.errors       Counter        {error}       handler callbacks that failed; error.type = "error" or "panic"
//	rtkit.broker.duration      Histogram      s             broker calls (topics.Observe); rtkit.broker.operation, error.type when one failed
//
// Every measurement has the attributes rtkit.route (realtime.Options.Name,
// or the ServeMux pattern) and, where there is one, rtkit.transport
// ("websocket", "sse", "longpoll", "http", "memory"); broker calls have
// rtkit.broker.operation only. No attribute ever holds a connection id,
// a topic name or anything a client chooses.
//
// Failures follow the conventions: a failed relay or broker call is
// recorded in the same duration histogram with error.type set (the
// error's Go type), so errors are the histogram's count with error.type
// present.
package rtotel
