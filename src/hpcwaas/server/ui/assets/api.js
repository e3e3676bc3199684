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
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal,
    cache: "no-store",
  });
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

const pause = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

/**
 * Follow `GET /executions/{id}/events` until the execution is terminal or `signal` aborts.
 *
 * The stream is read with fetch() so the token travels in the Authorization header (an
 * EventSource cannot send one). A dropped connection is resumed with Last-Event-ID.
 */
export async function followEvents(executionId, { onLog, onStatus, onConnection, signal }) {
  let lastId = null;
  let failures = 0;
  while (!signal.aborted) {
    const headers = authHeaders({ Accept: "text/event-stream" });
    if (lastId !== null) headers["Last-Event-ID"] = lastId;
    let finished = false;
    try {
      const response = await fetch(`/executions/${seg(executionId)}/events?levels=15`, {
        headers,
        signal,
        cache: "no-store",
      });
      if (!response.ok) throw await failure(response);
      onConnection?.(true);
      failures = 0;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value.replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!event) continue;
          if (event.type === "log") {
            if (event.id !== null) lastId = event.id;
            onLog(JSON.parse(event.data), Number(event.id));
          } else if (event.type === "status") {
            const execution = JSON.parse(event.data);
            onStatus(execution);
            if (isTerminal(execution.status)) finished = true;
          }
        }
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof NotLoggedIn || (error instanceof ApiError && error.status < 500)) {
        throw error;
      }
      failures += 1;
    }
    if (finished) return;
    onConnection?.(false);
    // The server closes long streams on purpose; after errors, wait longer each time.
    await pause(Math.min(500 * 2 ** failures, 15000), signal);
  }
}
