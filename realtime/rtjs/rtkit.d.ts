// Type declarations for rtkit.js, the browser client of rtkit routes.

/** The transports the client speaks, in its default order of preference. */
export type Transport = "websocket" | "sse" | "longpoll";

/** The client's life cycle. "reconnecting" follows a drop of an open connection. */
export type State = "connecting" | "open" | "reconnecting" | "closing" | "closed";

export declare const CONNECTING: 0;
export declare const OPEN: 1;
export declare const CLOSING: 2;
export declare const CLOSED: 3;

export interface RealtimeOptions {
  /** A bearer token: "Authorization: Bearer" on HTTP requests, the "rtkit.bearer.<base64url>" subprotocol on WebSocket. Never put in a URL. */
  token?: string;
  /** Transports the client may use; the server's negotiation order decides among them. Default all three. */
  transports?: Transport[];
  /** Milliseconds a WebSocket may take to open before the client falls back; also bounds the negotiation and the long-poll open. Default 3000. */
  upgradeTimeout?: number;
  /** Milliseconds a new SSE stream may take to deliver its session event before the client falls back to long-polling. Default 3000. */
  firstEventTimeout?: number;
  /** Milliseconds each POST and DELETE may take; a POST that times out is sent again with the same seq. Default 10000. */
  requestTimeout?: number;
  /** First reconnect delay in milliseconds, doubled per failed attempt, with jitter. Default 500. */
  minDelay?: number;
  /** Largest reconnect delay in milliseconds. Default 10000. */
  maxDelay?: number;
  /** Failed attempts in a row before the client gives up with close code 1006. Default Infinity. */
  maxRetries?: number;
  /** Most messages queued while not connected; send throws beyond it. Default 256. */
  maxQueue?: number;
  /** Most characters of one SSE event; a larger one closes the client with 1009. Default 8388608 (8 Mi). */
  maxEventSize?: number;
  /** Fallbacks for the server's pingInterval/pongTimeout until negotiation tells them. Defaults 25000 and 10000. */
  pingInterval?: number;
  pongTimeout?: number;
  /** Whether to reconnect after a close with this code. Default: the exported shouldReconnect. */
  shouldReconnect?: (code: number, reason: string) => boolean;
}

export declare const defaults: Readonly<Required<Omit<RealtimeOptions, "token" | "shouldReconnect">>>;

/** The default reconnect policy (PROTOCOL.md): true for 1001, 1006, 1012, 1013 and 1014 only. */
export declare function shouldReconnect(code: number): boolean;

export interface RealtimeMessageEvent extends MessageEvent {
  /** A string for text messages, an ArrayBuffer for binary ones. */
  readonly data: string | ArrayBuffer;
  readonly transport: Transport;
}

export interface RealtimeOpenEvent extends Event {
  readonly transport: Transport;
  /** How many times the client reconnected before this open. */
  readonly reconnects: number;
  /** True when an SSE or long-poll session was resumed without loss. */
  readonly resumed?: boolean;
  /** The WebSocket subprotocol the server selected ("rtkit"). */
  readonly protocol?: string;
}

export interface RealtimeCloseEvent extends CloseEvent {}

export interface RealtimeErrorEvent extends Event {
  readonly message: string;
  /** The transport that failed; null for the negotiation. */
  readonly transport: Transport | null;
}

export interface RealtimeStateEvent extends Event {
  readonly state: State;
  readonly transport: Transport | null;
  /** Milliseconds until the next attempt, when reconnecting. */
  readonly delay?: number;
  /** Why the client is reconnecting (the failed attempt or the lost connection), when reconnecting. */
  readonly error?: string;
  /** The close code and reason, when closed. */
  readonly code?: number;
  readonly reason?: string;
}

export interface RealtimeGapEvent extends Event {
  /** Messages after this seq were lost, or null. */
  readonly after: number | null;
  /**
   * null when the server said which seq; "new connection" after a WebSocket reconnect or a new
   * session; "unknown session" when the session was gone and a new one started. A gap for a new
   * connection made while reconnecting comes just before its open event (resumed false), so a
   * page that re-subscribes on open need not also do so on that gap (state is not yet "open").
   */
  readonly reason: string | null;
}

/** A message the server refused for good (its POST answered 400, 401, 403, 409, 413...); it is not sent again. */
export interface RealtimeRefusedEvent extends Event {
  /** The message, as passed to send. */
  readonly data: string | ArrayBuffer | ArrayBufferView | Blob;
  /** The HTTP status of the refusal. */
  readonly status: number;
  readonly message: string;
  readonly transport: Transport | null;
}

export interface RealtimeEventMap {
  open: RealtimeOpenEvent;
  message: RealtimeMessageEvent;
  close: RealtimeCloseEvent;
  error: RealtimeErrorEvent;
  statechange: RealtimeStateEvent;
  gap: RealtimeGapEvent;
  refused: RealtimeRefusedEvent;
}

/**
 * A connection to an rtkit route that falls back, reconnects and resumes by itself, following
 * transports/PROTOCOL.md's "Client behaviour" tables. On pagehide it ends an SSE or long-poll
 * session at once (a keepalive DELETE with code 1001), and closes a WebSocket with 1000 "page
 * closed" when the page enters the back/forward cache; a page restored from that cache connects
 * again. A POST answered 429 is sent again with the same seq after Retry-After
 * (at most 30 s), without reconnecting; one refused for good fires "refused". On WebSocket the
 * server's heartbeat (subprotocol "rtkit") lets it notice a half-open socket.
 */
export declare class RealtimeClient extends EventTarget {
  constructor(url: string | URL, options?: RealtimeOptions);
  readonly url: string;
  readonly options: RealtimeOptions;
  /** CONNECTING (also while reconnecting), OPEN, CLOSING or CLOSED. */
  readonly readyState: 0 | 1 | 2 | 3;
  readonly state: State;
  /** The transport in use or being tried. */
  readonly transport: Transport | null;
  /** The server's public connection id (SSE and long-polling). */
  readonly id: string | null;
  readonly reconnects: number;
  /** Bytes waiting to be sent, queued or in the WebSocket's buffer. */
  readonly bufferedAmount: number;

  onopen: ((this: RealtimeClient, ev: RealtimeOpenEvent) => any) | null;
  onmessage: ((this: RealtimeClient, ev: RealtimeMessageEvent) => any) | null;
  onclose: ((this: RealtimeClient, ev: RealtimeCloseEvent) => any) | null;
  onerror: ((this: RealtimeClient, ev: RealtimeErrorEvent) => any) | null;
  onstatechange: ((this: RealtimeClient, ev: RealtimeStateEvent) => any) | null;
  ongap: ((this: RealtimeClient, ev: RealtimeGapEvent) => any) | null;
  onrefused: ((this: RealtimeClient, ev: RealtimeRefusedEvent) => any) | null;

  /** Sends now or queues until open; throws QuotaExceededError when the queue is full, InvalidStateError after close. */
  send(data: string | ArrayBuffer | ArrayBufferView | Blob): void;
  /**
   * Closes with code 1000 or 3000–4999 after sending what is queued; no reconnect follows.
   * Whenever an SSE or long-poll session exists (open, being resumed, or being opened) it is
   * ended on the server (DELETE) with the code and reason.
   */
  close(code?: number, reason?: string): void;

  addEventListener<K extends keyof RealtimeEventMap>(type: K, listener: (this: RealtimeClient, ev: RealtimeEventMap[K]) => any, options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof RealtimeEventMap>(type: K, listener: (this: RealtimeClient, ev: RealtimeEventMap[K]) => any, options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject, options?: boolean | EventListenerOptions): void;
}

/** Same as new RealtimeClient(url, options). */
export declare function connect(url: string | URL, options?: RealtimeOptions): RealtimeClient;

/**
 * The text/event-stream parser the SSE transport uses (exported for tests). It takes linear
 * time whatever the chunking; push throws a RangeError once one event exceeds maxEventSize
 * characters (default 8 Mi).
 */
export declare class EventStreamParser {
  constructor(
    onEvent: (ev: { type: string; data: string; id: string }) => void,
    onComment?: (text: string) => void,
    onRetry?: (ms: number) => void,
    maxEventSize?: number,
  );
  lastId: string;
  readonly maxEventSize: number;
  /** Characters examined for line ends so far, for tests of the work per character. */
  readonly scanned: number;
  push(text: string): void;
}
