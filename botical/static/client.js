// The WebSocket protocol of docs/protocol.md: requests, channels with seq, resume and resync.
// No DOM here: the UI (app.js) watches channels and is told about the connection state.

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 15000;
const DEFAULT_HEARTBEAT_MS = 25000;
const CLOSE_CREDENTIAL = 4001; // token expired or revoked: retrying cannot help
const CLOSE_TOO_SLOW = 4008; // reconnect at once and resume
const CLOSE_ABUSE = 4029; // back off for the longest delay

export class ConnectionLost extends Error {
  constructor() {
    super("Not connected to the server");
  }
}

export class RequestError extends Error {
  constructor(error) {
    super(error.message);
    this.code = error.code;
    this.details = error.details;
  }
}

// One connection to /ws that reconnects on its own, signed in by the HttpOnly cookie that
// POST /api/login set (the page never holds the token). `onState(state, reason)` is told
// "connecting", "connected", "reconnecting" or "offline".
export class BoticalClient {
  constructor(onState) {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    this.url = `${scheme}//${location.host}/ws`;
    this.onState = onState;
    this.ws = null;
    this.epoch = null; // of the last connection.ready: a new one means the server restarted
    this.ready = false;
    this.everConnected = false;
    this.attempt = 0;
    this.nextId = 1;
    this.pending = new Map(); // request id -> {resolve, reject}
    this.channels = new Map(); // channel -> Watch
    this.heartbeat = null;
    this.awaitingPong = false;
    this.retryTimer = null;
    this.signedOut = false; // the cookie was refused: only a new sign-in helps
    window.addEventListener("online", () => this.ws || this.signedOut || this.connect());
  }

  connect() {
    clearTimeout(this.retryTimer);
    this.onState(this.everConnected ? "reconnecting" : "connecting");
    // The browser sends the sign-in cookie with the upgrade; the server checks its Origin.
    const ws = new WebSocket(this.url, ["botical.v1"]);
    let ready = false;
    this.ws = ws;
    ws.onmessage = (message) => {
      if (this.ws !== ws) return; // given up on (heartbeat), still closing
      const frame = JSON.parse(message.data);
      if (frame.event === "connection.ready") ready = true;
      this.receive(frame);
    };
    ws.onclose = (close) => this.ws === ws && this.lost(close.code, ready);
  }

  // Send a request; resolves with its result, rejects with RequestError or ConnectionLost.
  request(method, params = {}) {
    return this.call({ type: "request", id: this.newId(), method, params });
  }

  // Follow a channel. `handlers.onEvent(event, data)` gets every event exactly once, in seq
  // order; `handlers.resync()` reloads the state from scratch and returns the seq it is current
  // to. It runs at first, and whenever events cannot be replayed (restart, gap).
  watch(channel, handlers) {
    const watch = { handlers, lastSeq: null, epoch: null, holding: true, held: [], syncing: false };
    this.channels.set(channel, watch);
    if (this.ready) this.subscribe(channel, watch);
  }

  unwatch(channel) {
    if (!this.channels.delete(channel) || !this.ready) return;
    this.call({ type: "unsubscribe", id: this.newId(), channels: [channel] }).catch(() => {});
  }

  newId() {
    return `c${this.nextId++}`;
  }

  call(frame) {
    return new Promise((resolve, reject) => {
      if (!this.ready) {
        reject(new ConnectionLost());
        return;
      }
      this.pending.set(frame.id, { resolve, reject });
      this.ws.send(JSON.stringify(frame));
    });
  }

  receive(frame) {
    if (frame.type === "response") {
      const pending = this.pending.get(frame.id);
      if (!pending) return;
      this.pending.delete(frame.id);
      if (frame.error) pending.reject(new RequestError(frame.error));
      else pending.resolve(frame.result);
    } else if (frame.type === "pong") {
      this.awaitingPong = false;
    } else if (frame.type === "event" && frame.channel === "connection") {
      this.connectionEvent(frame.event, frame.data);
    } else if (frame.type === "event") {
      const watch = this.channels.get(frame.channel);
      if (watch) this.deliver(frame.channel, watch, frame);
    }
  }

  connectionEvent(event, data) {
    if (event === "connection.ready") {
      this.epoch = data.epoch;
      this.ready = true;
      this.everConnected = true;
      this.attempt = 0;
      this.startHeartbeat(data.heartbeatMs || DEFAULT_HEARTBEAT_MS);
      this.onState("connected");
      for (const [channel, watch] of this.channels) this.subscribe(channel, watch);
    } else if (event === "connection.closing") {
      this.onState("reconnecting", "The server is restarting");
    } else if (event === "subscription.revoked") {
      const watch = this.channels.get(data.channel);
      this.channels.delete(data.channel);
      watch?.handlers.onRevoked?.(data.error);
    }
  }

  // (Re)subscribe; with a seq from this same server process, ask for what was missed.
  async subscribe(channel, watch) {
    const frame = { type: "subscribe", id: this.newId(), channels: [channel] };
    watch.held = []; // anything held came from a connection that is gone; replay covers it
    if (watch.lastSeq !== null && watch.epoch === this.epoch) {
      frame.since = { [channel]: watch.lastSeq };
      frame.epoch = watch.epoch;
    } else {
      watch.holding = true; // nothing applies until a resync gives a state and its seq
    }
    let ack;
    try {
      ack = await this.call(frame);
    } catch (error) {
      if (!(error instanceof ConnectionLost)) watch.handlers.onError?.(error);
      return;
    }
    if (this.channels.get(channel) !== watch) return; // unwatched meanwhile
    if (ack.rejected.length) {
      this.channels.delete(channel);
      watch.handlers.onError?.(new RequestError(ack.rejected[0].error));
    } else if (ack.subscribed[0].recovered) {
      this.release(channel, watch); // replayed events came before the ack, in order
    } else {
      this.resync(channel, watch);
    }
  }

  deliver(channel, watch, frame) {
    if (this.channels.get(channel) !== watch) return;
    if (watch.holding) {
      watch.held.push(frame);
      return;
    }
    const first = frame.mergedFrom ?? frame.seq; // a merged delta stands for mergedFrom..seq
    if (frame.seq <= watch.lastSeq) return; // already applied
    if (first !== watch.lastSeq + 1) {
      watch.held.push(frame); // a gap, or a merge overlapping what we have: start over
      this.resync(channel, watch);
      return;
    }
    watch.lastSeq = frame.seq;
    watch.handlers.onEvent(frame.event, frame.data);
  }

  async resync(channel, watch) {
    watch.holding = true;
    if (watch.syncing) return;
    watch.syncing = true;
    const epoch = this.epoch;
    try {
      const seq = await watch.handlers.resync();
      if (this.channels.get(channel) !== watch) return; // unwatched meanwhile
      watch.lastSeq = seq;
      watch.epoch = epoch;
      this.release(channel, watch);
    } catch (error) {
      // Connection lost: the next connection.ready subscribes and resyncs again.
      if (!(error instanceof ConnectionLost)) watch.handlers.onError?.(error);
    } finally {
      watch.syncing = false;
    }
  }

  release(channel, watch) {
    watch.holding = false;
    const held = watch.held;
    watch.held = [];
    for (const frame of held) this.deliver(channel, watch, frame);
  }

  startHeartbeat(intervalMs) {
    clearInterval(this.heartbeat);
    this.awaitingPong = false;
    // Browsers cannot see protocol pings: a ping frame without a pong means a dead link.
    this.heartbeat = setInterval(() => {
      if (this.awaitingPong) {
        const ws = this.ws;
        this.lost(1006, true);
        ws.close();
        return;
      }
      this.awaitingPong = true;
      this.ws.send(JSON.stringify({ type: "ping" }));
    }, intervalMs);
  }

  async lost(code, wasReady) {
    this.ws = null;
    this.ready = false;
    clearInterval(this.heartbeat);
    for (const pending of this.pending.values()) pending.reject(new ConnectionLost());
    this.pending.clear();
    if (code === CLOSE_CREDENTIAL || (!wasReady && (await this.credentialRefused()))) {
      this.signedOut = true;
      this.onState(
        "offline",
        "Your sign-in expired or was revoked: open the URL botical serve printed",
      );
      return;
    }
    if (code === CLOSE_ABUSE) this.attempt = 10;
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** this.attempt++);
    const delay = code === CLOSE_TOO_SLOW ? 0 : ceiling / 2 + (Math.random() * ceiling) / 2;
    const trying = this.everConnected ? "reconnecting" : "connecting";
    this.onState(navigator.onLine ? trying : "offline");
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  // A refused upgrade looks like any failed connection to a browser; ask the REST API why.
  async credentialRefused() {
    try {
      const response = await fetch("/api/me");
      return response.status === 401;
    } catch {
      return false; // the server is unreachable, which says nothing about the token
    }
  }
}
