// react.js: a React hook over rtkit.js. React is a peer dependency: the
// page's import map or bundler resolves "react".
import { useCallback, useEffect, useRef, useState } from "react";
import { RealtimeClient } from "./rtkit.js";

/**
 * useRealtime connects to url while the component is mounted and returns
 * {state, transport, lastMessage, send, close}. The connection is remade
 * when url, options.token or options.transports change; other options are
 * read when it is made. options.onMessage, if set, sees every message
 * (lastMessage only the latest, as state updates batch).
 */
export function useRealtime(url, options = {}) {
  const [state, setState] = useState("connecting");
  const [transport, setTransport] = useState(null);
  const [lastMessage, setLastMessage] = useState(null);
  const client = useRef(null);
  const opts = useRef(options);
  opts.current = options;
  const transports = options.transports ? options.transports.join(",") : "";

  useEffect(() => {
    const c = new RealtimeClient(url, opts.current);
    client.current = c;
    c.onstatechange = () => {
      setState(c.state);
      setTransport(c.transport);
    };
    c.onmessage = (e) => {
      setLastMessage(e);
      if (opts.current.onMessage) opts.current.onMessage(e);
    };
    return () => {
      client.current = null;
      c.onstatechange = c.onmessage = null;
      c.close(1000, "unmounted");
    };
  }, [url, options.token, transports]);

  const send = useCallback((data) => {
    const c = client.current;
    if (!c || c.state === "closing" || c.state === "closed") return false;
    c.send(data);
    return true;
  }, []);
  const close = useCallback((code, reason) => {
    if (client.current) client.current.close(code, reason);
  }, []);

  return { state, transport, lastMessage, send, close };
}
