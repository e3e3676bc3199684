// The REST API, called with the user's token; the same API the `waas` command uses.

const TOKEN_KEY = "hpcwaas.token";
const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

let onUnauthorized = () => {};

/** The token the login page handed over, or null. */
export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** What to do when the API says the token is missing, wrong or expired. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

export function isTerminal(status) {
  return TERMINAL.has(status);
}

/** An error answer of the API: its status and the items of its envelope. */
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.map((e) => e.detail).join("; ") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/** Raised after a 401: the page has already been sent to the login screen. */
export class NotLoggedIn extends Error {}

/** The server did not answer at all (down, restarting, wrong address, network gone). */
export class Unreachable extends Error {
  constructor() {
    super(
      "Cannot reach the server: it may be restarting, or the network is down. " +
        "Reload the page once it is back.",
    );
  }
}

// GETs are tried again this many times, waiting longer each time, while a notice says so.
const RETRIES = 5;

/** The page's notice that the server cannot be reached (in index.html), shown or hidden. */
function unreachableNotice(shown) {
  const notice = document.getElementById("unreachable");
  if (notice) notice.hidden = !shown;
}

/** fetch(), with a network failure (no answer at all) turned into Unreachable. */
async function reach(url, init) {
  try {
    const response = await fetch(url, init);
    unreachableNotice(false);
    return response;
  } catch (error) {
    if (init.signal?.aborted) throw error;
    unreachableNotice(true);
    throw new Unreachable();
  }
}

function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}`, ...extra } : extra;
}

async function failure(response) {
  if (response.status === 401) {
    forgetToken();
    onUnauthorized();
    return new NotLoggedIn("not logged in");
  }
  let errors = [];
  try {
    const body = await response.json();
    errors = Array.isArray(body.errors) ? body.errors : [];
  } catch {
    // not the envelope (a proxy's page): the status says enough
  }
  if (!errors.length) errors = [{ status: response.status, detail: `HTTP ${response.status}` }];
  return new ApiError(response.status, errors);
}

const pause = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/** Call the API; resolves to {status, headers, data} or throws ApiError / NotLoggedIn. */
export async function call(method, path, { body, query, signal } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(key, value);
    }
    const text = params.toString();
    if (text) url += `?${text}`;
  }
  const headers = authHeaders({ Accept: "application/json" });
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const init = {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  };
  let response;
  for (let attempt = 0; ; attempt += 1) {
    try {
      response = await reach(url, init);
      break;
    } catch (error) {
      // Only reads are tried again: a POST may have reached the server before the failure.
      if (!(error instanceof Unreachable) || method !== "GET" || attempt >= RETRIES) throw error;
      await pause(1000 * 2 ** attempt, signal);
    }
  }
  if (!response.ok) throw await failure(response);
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    data: text ? JSON.parse(text) : null,
  };
}

export const get = (path, options) => call("GET", path, options).then((r) => r.data);

/** A path segment, escaped (workflow IDs hold '@'). */
export const seg = (value) => encodeURIComponent(value);

function parseEvent(block) {
  const event = { type: "message", id: null, data: [] };
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") event.type = value;
    else if (field === "id") event.id = value;
    else if (field === "data") event.data.push(value);
  }
  return event.data.length ? { ...event, data: event.data.join("\n") } : null;
}


/**
 * Read one event stream until it ends: `onOpen()` once connected, `onEvent(event)` for each
 * event. The stream is read with fetch() so the token travels in the Authorization header
 * (an EventSource cannot send one).
 */
async function readStream(url, { lastId, signal, onOpen, onEvent }) {
  const headers = authHeaders({ Accept: "text/event-stream" });
  if (lastId !== null) headers["Last-Event-ID"] = lastId;
  const response = await reach(url, { headers, signal, cache: "no-store" });
  if (!response.ok) throw await failure(response);
  onOpen();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = parseEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (event) onEvent(event);
    }
  }
}

/**
 * Read `url`'s event stream again and again until `onEvent` returns true (the end) or
 * `signal` aborts; `onConnection(state)`: "live", "reconnecting" or "unreachable". A dropped
 * connection is resumed with Last-Event-ID; after errors it waits longer each time.
 */
async function followStream(url, { onEvent, onConnection, signal }) {
  let lastId = null;
  let failures = 0;
  while (!signal.aborted) {
    let finished = false;
    let unreachable = false;
    try {
      await readStream(url, {
        lastId,
        signal,
        onOpen() {
          onConnection?.("live");
          failures = 0;
        },
        onEvent(event) {
          // an event read in the same chunk as the abort belongs to a view that is gone
          if (signal.aborted) return;
          if (event.id !== null) lastId = event.id;
          if (onEvent(event)) finished = true;
        },
      });
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof NotLoggedIn || (error instanceof ApiError && error.status < 500)) {
        throw error;
      }
      failures += 1;
      unreachable = error instanceof Unreachable;
    }
    if (finished) return;
    onConnection?.(unreachable ? "unreachable" : "reconnecting");
    // The server closes long streams on purpose; after errors, wait longer each time.
    await pause(Math.min(500 * 2 ** failures, 15000), signal);
  }
}

/** Follow `GET /executions/{id}/events` until the execution is terminal or `signal` aborts. */
export function followEvents(executionId, { onLog, onStatus, onConnection, signal }) {
  return followStream(`/executions/${seg(executionId)}/events?levels=15`, {
    signal,
    onConnection,
    onEvent(event) {
      if (event.type === "log") {
        onLog(JSON.parse(event.data), Number(event.id));
      } else if (event.type === "status") {
        const execution = JSON.parse(event.data);
        onStatus(execution);
        return isTerminal(execution.status);
      }
      return false;
    },
  });
}

/** Follow `GET /events/executions`: the list's first page, again on every change. */
export function followExecutionList(query, { onPage, onConnection, signal }) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value) params.set(key, value);
  return followStream(`/events/executions?${params}`, {
    signal,
    onConnection,
    onEvent(event) {
      if (event.type === "executions") onPage(JSON.parse(event.data));
      return false;
    },
  });
}
