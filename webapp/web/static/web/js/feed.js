// The live feed (WebSocket /ws/providers/, protocol in webapp/feed/protocol.py): subscribes, and on
// a reconnect resumes the session so missed events are replayed. Each connect counts as one request
// of the plan, so reconnects back off (1 s doubling to 60 s; a refusal for the rate limit waits 60 s).
import { apiKey } from "./api.js";

export function follow({ url, channels, onEvent, onState, onGap }) {
  let session = null, offered = null, lastId = null, delay = 1000, socket = null;

  const open = () => {
    const key = apiKey.get();
    // Browsers cannot set headers on a WebSocket: the key travels as a subprotocol.
    socket = new WebSocket(new URL(url, location.href.replace(/^http/, "ws")), key ? ["gpubroker", `bearer.${key}`] : []);
    const send = (message) => socket.send(JSON.stringify(message));
    onState("connecting");
    socket.onmessage = ({ data }) => {
      const message = JSON.parse(data);
      switch (message.type) {
        case "connection_established":
          offered = message.session_id;
          if (session) send({ type: "resume", session_id: session, last_event_id: lastId });
          else send({ type: "subscribe", channels });
          break;
        case "subscribed":
          session = session || offered;
          delay = 1000;
          onState("live");
          break;
        case "resumed":
          session = message.session_id;
          delay = 1000;
          onState("live");
          break;
        case "error":
          if (message.code === "unknown_session") {
            session = offered;
            send({ type: "subscribe", channels });
            onGap();
          } else if (message.code === "events_lost") onGap();
          break;
        default: // an event: its fields at top level beside `type` and `id`, its position in the feed
          if (message.id) {
            lastId = message.id;
            onEvent(message);
          }
      }
    };
    socket.onclose = (event) => {
      const wait = event.code === 4429 ? 60000 : delay; // 4429: refused for the plan's rate limit
      delay = Math.min(delay * 2, 60000);
      onState("reconnecting", Math.round(wait / 1000));
      setTimeout(open, wait);
    };
  };
  open();
  // A new key takes effect on a new connection (the session resumes on it).
  return { restart: () => { delay = 1000; socket.close(); } };
}
