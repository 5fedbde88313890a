// usage.ts uses every name that rtkit.d.ts and react.d.ts declare, the way
// an application would; TestTypeScript checks it with tsc --strict. It is
// type-checked only, never run.
import {
  CLOSED, CLOSING, CONNECTING, OPEN, EventStreamParser, RealtimeClient, connect, defaults, shouldReconnect,
} from "../../rtkit.js";
import type {
  RealtimeCloseEvent, RealtimeErrorEvent, RealtimeEventMap, RealtimeGapEvent, RealtimeMessageEvent, RealtimeOpenEvent,
  RealtimeOptions, RealtimeRefusedEvent, RealtimeStateEvent, State, Transport,
} from "../../rtkit.js";
import { useRealtime } from "../../react.js";
import type { UseRealtimeOptions, UseRealtimeResult } from "../../react.js";

const transports: Transport[] = ["sse", "websocket", "longpoll"];
const options: RealtimeOptions = {
  token: "t0k3n",
  transports,
  upgradeTimeout: defaults.upgradeTimeout,
  firstEventTimeout: 3000,
  requestTimeout: 10000,
  minDelay: 500,
  maxDelay: defaults.maxDelay,
  maxRetries: Infinity,
  maxQueue: 256,
  maxEventSize: 8 << 20,
  pingInterval: 25000,
  pongTimeout: 10000,
  shouldReconnect: (code: number, reason: string) => shouldReconnect(code) && reason !== "bye",
};

const c = new RealtimeClient("/chat", options);
const states: Record<number, string> = { [CONNECTING]: "connecting", [OPEN]: "open", [CLOSING]: "closing", [CLOSED]: "closed" };
const state: State = c.state;
const label: string = states[c.readyState] + " " + state + " " + (c.transport ?? "none") + " " + (c.id ?? "") + " " + c.url;
const counts: number = c.reconnects + c.bufferedAmount;

c.onopen = (e: RealtimeOpenEvent) => console.log(e.transport, e.reconnects, e.resumed === true, e.protocol ?? "");
c.onmessage = (e: RealtimeMessageEvent) => {
  const text: string = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data);
  console.log(text, e.transport);
};
c.onclose = (e: RealtimeCloseEvent) => console.log(e.code, e.reason, e.wasClean);
c.onerror = (e: RealtimeErrorEvent) => console.log(e.message, e.transport ?? "negotiation");
c.onstatechange = (e: RealtimeStateEvent) =>
  console.log(e.state, e.transport, e.delay ?? 0, e.error ?? "", e.code ?? 0, e.reason ?? "");
c.ongap = (e: RealtimeGapEvent) => console.log(e.after ?? "unknown", e.reason ?? "");
c.onrefused = (e: RealtimeRefusedEvent) => console.log(e.status, e.message, e.data, e.transport);
c.addEventListener("gap", (e) => console.log(e.after));
c.addEventListener("refused", function (this: RealtimeClient, e) { console.log(this.state, e.status); });
const onAny = (e: RealtimeEventMap["statechange"]) => console.log(e.state);
c.addEventListener("statechange", onAny);
c.removeEventListener("statechange", onAny);
c.send("text");
c.send(new Uint8Array([1, 2, 3]));
c.send(new ArrayBuffer(4));
c.send(new Blob(["blob"]));
c.close(4000, "bye");
c.close();

const other: RealtimeClient = connect(new URL("https://example.com/feed"));
other.close(1000);

const parser = new EventStreamParser(
  (ev) => console.log(ev.type, ev.data, ev.id),
  (comment) => console.log(comment),
  (ms) => console.log(ms),
  1 << 20,
);
parser.push("data: x\n\n");
console.log(parser.lastId, parser.maxEventSize, parser.scanned);

const hookOptions: UseRealtimeOptions = { ...options, onMessage: (e) => console.log(e.data) };
export function useChat(url: string): UseRealtimeResult {
  const r: UseRealtimeResult = useRealtime(url, hookOptions);
  const ok: boolean = r.send("hello");
  r.close(1000, "done");
  console.log(r.state, r.transport, r.lastMessage?.data, ok);
  return r;
}

console.log(label, counts);
