// Building the page with DOM APIs only: text goes through textContent, never through HTML.

/**
 * An element with attributes and children. Attribute keys: `class`, `text` (textContent),
 * `on<event>` (a listener), `dataset` (an object), anything else as an attribute
 * (true: present and empty; false, null, undefined: absent).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

/** Append children (nodes, strings, arrays of them); null and false are skipped. */
export function append(node, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element: attributes as given (`class` included), children as in `el`. */
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, String(value));
  }
  return append(node, children);
}

/** Replace a node's children (null and false are skipped, unlike replaceChildren). */
export function replace(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** A date-time for people: the browser's locale, to the second. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** How long between two instants (the second one defaults to now), like "1 min 5 s". */
export function formatDuration(startIso, endIso) {
  if (!startIso) return "—";
  const start = new Date(startIso).getTime();
  const end = endIso ? new Date(endIso).getTime() : Date.now();
  let seconds = Math.max(0, Math.round((end - start) / 1000));
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds -= minutes * 60;
  const parts = [];
  if (hours) parts.push(`${hours} h`);
  if (minutes) parts.push(`${minutes} min`);
  if (!hours) parts.push(`${seconds} s`);
  return parts.join(" ");
}

/** A duration that counts up every second while `endIso` is unset (it still runs). */
export function liveDuration(startIso, endIso) {
  const node = el("span", { class: "duration", text: formatDuration(startIso, endIso) });
  if (startIso && !endIso) node.dataset.since = startIso;
  return node;
}

// One timer for every counting duration on the page.
setInterval(() => {
  for (const node of document.querySelectorAll(".duration[data-since]")) {
    node.textContent = formatDuration(node.dataset.since, null);
  }
}, 1000);

/** A status badge: the state in words, coloured by a class (colour is never the only cue). */
export function badge(state) {
  return el("span", { class: `badge state-${String(state).toLowerCase()}`, text: state });
}

/** Tell screen-reader users about something that happened outside the focus. */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) {
    region.textContent = "";
    // A fresh text node after a tick makes repeated identical messages heard again.
    setTimeout(() => {
      region.textContent = message;
    }, 50);
  }
}

/** Ask for confirmation in a modal dialog; resolves true when the user confirms. */
export function confirmDialog({ title, message, confirmLabel, cancelLabel = "Keep it" }) {
  return new Promise((resolve) => {
    const titleId = `dialog-title-${Math.random().toString(36).slice(2)}`;
    const confirmButton = el("button", { type: "button", class: "danger", text: confirmLabel });
    const cancelButton = el("button", { type: "button", class: "secondary", text: cancelLabel });
    const dialog = el(
      "dialog",
      { "aria-labelledby": titleId, class: "confirm" },
      el("h2", { id: titleId, text: title }),
      el("p", { text: message }),
      el("div", { class: "actions" }, cancelButton, confirmButton),
    );
    const close = (answer) => {
      dialog.close();
      dialog.remove();
      resolve(answer);
    };
    confirmButton.addEventListener("click", () => close(true));
    cancelButton.addEventListener("click", () => close(false));
    dialog.addEventListener("cancel", (event) => {
      event.preventDefault();
      close(false);
    });
    document.body.append(dialog);
    dialog.showModal();
    cancelButton.focus();
  });
}

/** Copy text to the clipboard; the button says whether it worked. */
export async function copyText(text, button) {
  const label = button.textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Copy failed: select the text and copy it";
  }
  setTimeout(() => {
    button.textContent = label;
  }, 2500);
}
