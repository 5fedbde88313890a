// Type declarations for react.js, the React hook over rtkit.js.
import type { RealtimeMessageEvent, RealtimeOptions, State, Transport } from "./rtkit.js";

export interface UseRealtimeOptions extends RealtimeOptions {
  /** Sees every message; lastMessage holds only the latest. */
  onMessage?: (ev: RealtimeMessageEvent) => void;
}

export interface UseRealtimeResult {
  state: State;
  transport: Transport | null;
  lastMessage: RealtimeMessageEvent | null;
  /** Sends or queues; false when there is no open or reconnecting client. */
  send: (data: string | ArrayBuffer | ArrayBufferView | Blob) => boolean;
  close: (code?: number, reason?: string) => void;
}

/** Connects while mounted; reconnects when url, token or transports change. */
export declare function useRealtime(url: string | URL, options?: UseRealtimeOptions): UseRealtimeResult;
