// The server connection: the access token, and the live frame protocol over Socket.IO.
//   frame  {seq, image: JPEG bytes}           ->
//   faces  {seq, batch, faces: [...], ms: {decode, detect, embed, knn, total}}   <-
//   error  {seq, message}                       <-
import { io } from "/vendor/socket.io/socket.io.esm.min.js";

const TOKEN_KEY = "facelive.token";

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

/**
 * Connect to the server this page came from. handlers: onStatus(state, text), onHello(info),
 * onFaces(reply), onError(error). Returns {connected, sendFrame(seq, bytes)}.
 */
export function connectLive(token, handlers) {
  // WebSocket only: frames are binary and frequent; long-polling would only add latency.
  const socket = io({ transports: ["websocket"], auth: token ? { token } : {} });

  socket.on("connect", () => handlers.onStatus("connected", "connected"));
  socket.on("disconnect", () => handlers.onStatus("offline", "offline: reconnecting…"));
  socket.on("connect_error", (err) => {
    if (err.message === "invalid token") {
      // A stale or mistyped token: forget it and watch without it.
      localStorage.removeItem(TOKEN_KEY);
      socket.auth = {};
      handlers.onError({ seq: null, message: "The link's token is not valid: view only." });
      socket.connect();
      return;
    }
    handlers.onStatus("offline", `offline: ${err.message}`);
  });
  socket.on("hello", (info) => handlers.onHello(info));
  socket.on("faces", (reply) => handlers.onFaces(reply));
  socket.on("error", (error) => handlers.onError(error));

  return {
    get connected() {
      return socket.connected;
    },
    sendFrame(seq, bytes) {
      socket.emit("frame", { seq, image: bytes });
    },
  };
}
