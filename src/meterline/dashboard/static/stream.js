// A /v2/stream client for the pages: subscriptions replayed on every reconnect, backoff
// with full jitter (0.5 s → 15 s), a watchdog of two heartbeat intervals, and no retry on
// the do-not-reconnect close codes (STREAM.md).

import {api, getSession} from "./api.js";

const TERMINAL = (code) => code === 1008 || code === 1009 || (code >= 4400 && code <= 4999);

export class LiveStream {
  // onState(state, detail): state is "connecting", "live", "reconnecting" or "closed".
  constructor(onState = () => {}) {
    this.onState = onState;
    this.subs = new Map();
    this.socket = null;
    this.attempt = 0;
    this.healthySince = 0;
    this.watchdog = null;
    this.epoch = null;
  }

  // handler(message) receives every metric_update, alert and error of this subscription.
  subscribe(id, spec, handler) {
    const entry = this.subs.get(id);
    this.subs.set(id, {spec, handler, seq: entry ? entry.seq : null});
    this.send(id);
  }

  send(id) {
    const entry = this.subs.get(id);
    if (!entry || !this.socket || this.socket.readyState !== WebSocket.OPEN || !this.ready) return;
    const message = {action: "subscribe", subscription_id: id, ...entry.spec};
    if (entry.seq !== null && this.epoch) message.resume = {seq: entry.seq, epoch: this.epoch};
    this.socket.send(JSON.stringify(message));
  }

  start() {
    this.connect();
  }

  arm(interval) {
    clearTimeout(this.watchdog);
    // Two heartbeat intervals of silence: the connection is dead even if TCP has not noticed.
    this.watchdog = setTimeout(() => this.socket && this.socket.close(4000, "silent"), 2 * interval * 1000);
  }

  retry() {
    if (this.healthySince && Date.now() - this.healthySince > 60_000) this.attempt = 0;
    this.healthySince = 0;
    const cap = Math.min(15, 0.5 * 2 ** this.attempt);
    this.attempt += 1;
    this.onState("reconnecting");
    setTimeout(() => this.connect(), Math.random() * cap * 1000);  // full jitter
  }

  async connect(freshToken = false) {
    this.onState(this.epoch ? "reconnecting" : "connecting");
    let ticket;
    try {
      this.token = (await getSession(freshToken)).access_token;
      ticket = (await api("/v2/stream/tickets", {method: "POST"})).ticket;
    } catch (e) {
      this.retry();
      return;
    }
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const url = `${scheme}//${window.location.host}/v2/stream?ticket=${encodeURIComponent(ticket)}`;
    const ws = new WebSocket(url, ["meterline.v2"]);
    this.socket = ws;
    this.ready = false;
    let heartbeat = 20;
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      this.arm(heartbeat);
      if (msg.type === "connected") {
        heartbeat = msg.heartbeat_interval;
        this.healthySince = Date.now();
        if (this.epoch !== msg.epoch) for (const entry of this.subs.values()) entry.seq = null;
        this.epoch = msg.epoch;
        this.ready = true;
        for (const id of this.subs.keys()) this.send(id);
        return;
      }
      const entry = msg.subscription_id ? this.subs.get(msg.subscription_id) : null;
      if (msg.type === "metric_update") {
        this.onState("live");
        if (entry) {
          entry.seq = msg.seq;
          entry.handler(msg);
        }
      } else if (msg.type === "token_expiring") {
        // A session holds one token: refresh only when signing in again gave a new one;
        // otherwise the stream closes 4001 at expiry and the page goes to the login form.
        const before = this.token;
        getSession(true).then((s) => {
          if (s.access_token !== before) ws.send(JSON.stringify({action: "refresh", token: s.access_token}));
        }).catch(() => {});
      } else if (msg.type === "error") {
        if (entry) entry.handler(msg);
        else if (msg.error && msg.error.code === "AUTH_TOKEN_INVALID") this.onState("closed", "session expired");
      } else if (entry) {
        entry.handler(msg);
      }
    };
    ws.onclose = (event) => {
      clearTimeout(this.watchdog);
      if (this.socket !== ws) return;
      this.socket = null;
      this.ready = false;
      if (event.code === 4401 || event.code === 4403) {
        window.location.assign("/login");
        return;
      }
      if (TERMINAL(event.code)) {
        this.onState("closed", `disconnected (${event.code})`);
        return;
      }
      if (event.code === 4001) {
        this.connect(true);  // token expired: a new one first
        return;
      }
      this.retry();
    };
  }
}
