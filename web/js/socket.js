// The server connection: the access token, and the live protocol over Socket.IO.
//   frame  {seq, image: JPEG bytes}           ->
//   faces  {seq, batch, faces: [{..., name, track}], ms: {decode, detect, embed, knn, total}}  <-
//   error  {seq, message, code?, retry_ms?}     <-  code "rate_limited": wait retry_ms, go on
//   capture_start {count} / capture_cancel / capture_save {name}  ->  (answered by ack)
//   capture {collected, target, done, hint}     <-  after each frame while capturing
//   people_changed {gallery_size}               <-  to every page, after any gallery change
import { io } from "/vendor/socket.io/socket.io.esm.min.js";

const TOKEN_KEY = "facelive.token";
const ACK_TIMEOUT_MS = 60000; // enrolment runs on the server's busy inference thread
const BUSY_RETRY_MS = 10000; // a server with all its places taken: ask again this much later

/**
 * The token from the link (?token=...), remembered for later visits and then removed from the
 * address bar, so it does not end up in bookmarks or screenshots; else the remembered one.
 */
export function takeToken() {
  const url = new URL(window.location.href);
  const fromLink = url.searchParams.get("token");
  if (fromLink) {
    localStorage.setItem(TOKEN_KEY, fromLink);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);
    return fromLink;
  }
  return localStorage.getItem(TOKEN_KEY) || "";
}

/** A token the server refused: forget it, so the page falls back to view-only. */
export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

/**
 * Connect to the server this page came from. handlers: onStatus(state, text), onHello(info),
 * onFaces(reply), onError(error), onCapture(progress), onPeopleChanged(info).
 * Returns {connected, sendFrame(seq, bytes), request(event, payload) -> Promise<ack>}.
 */
export function connectLive(token, handlers) {
  // WebSocket only: frames are binary and frequent; long-polling would only add latency.
  const socket = io({ transports: ["websocket"], auth: token ? { token } : {} });

  socket.on("connect", () => handlers.onStatus("connected", "connected"));
  socket.on("disconnect", () => handlers.onStatus("offline", "offline: reconnecting…"));
  socket.on("connect_error", (err) => {
    if (err.message === "invalid token") {
      // A stale or mistyped token: forget it and watch without it.
      forgetToken();
      socket.auth = {};
      handlers.onError({ seq: null, message: "The link's token is not valid: view only." });
      socket.connect();
      return;
    }
    handlers.onStatus("offline", `offline: ${err.message}`);
    // Refused by the server itself ("server busy": every place taken), Socket.IO does not try
    // again on its own; a place may free up, so ask again later.
    if (!socket.active) setTimeout(() => socket.connect(), BUSY_RETRY_MS);
  });
  socket.on("hello", (info) => handlers.onHello(info));
  socket.on("faces", (reply) => handlers.onFaces(reply));
  socket.on("error", (error) => handlers.onError(error));
  socket.on("capture", (progress) => handlers.onCapture(progress));
  socket.on("people_changed", (info) => handlers.onPeopleChanged(info));

  return {
    get connected() {
      return socket.connected;
    },
    sendFrame(seq, bytes) {
      socket.emit("frame", { seq, image: bytes });
    },
    /** An event answered by the server's ack: {ok: true, ...} or {ok: false, error}. */
    async request(event, payload = {}) {
      try {
        return await socket.timeout(ACK_TIMEOUT_MS).emitWithAck(event, payload);
      } catch {
        return { ok: false, error: "the server did not answer in time" };
      }
    },
  };
}
