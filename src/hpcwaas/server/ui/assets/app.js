// The portal's shell: who is logged in, the navigation, and hash routes to pages.

import {
  call,
  forgetToken,
  get,
  getToken,
  NotLoggedIn,
  setUnauthorizedHandler,
  Unreachable,
} from "./api.js";
import { el, replace } from "./dom.js";
import { executionListPage } from "./execution_list.js";
import { executionPage } from "./executions.js";
import { keysPage } from "./keys.js";
import { workflowListPage, workflowPage } from "./workflows.js";

const main = document.getElementById("main");
let current = null; // the page on screen: {leave()} to stop its streams

const ROUTES = [
  [
    /^#\/workflows\/([^?]+)(?:\?from=(.+))?$/,
    (m) => workflowPage(decodeURIComponent(m[1]), m[2] ? decodeURIComponent(m[2]) : null),
  ],
  [/^#\/workflows\/?$/, () => workflowListPage()],
  [/^#\/executions\/(.+)$/, (m) => executionPage(decodeURIComponent(m[1]))],
  [/^#\/executions\/?$/, () => executionListPage()],
  [/^#\/keys\/?$/, () => keysPage()],
];

function loginUrl() {
  // Back to this very page once logged in (the server only accepts /ui/ paths).
  const route = location.hash.startsWith("#/") ? location.hash : "#/workflows";
  return `/auth/login?next=${encodeURIComponent(`/ui/${route}`)}`;
}

async function showLogin(message) {
  leave();
  document.getElementById("nav").hidden = true;
  document.getElementById("session").hidden = true;
  let how = "Log in";
  try {
    const config = await fetch("/auth/config", { cache: "no-store" }).then((r) => r.json());
    if (config.auth_type === "sso") how = "Log in with single sign-on";
  } catch {
    // the plain label will do
  }
  replace(
    main,
    el("h1", { text: "HPCWaaS" }),
    el("p", {
      text: "Run the HPC workflows published for you, follow them live and fetch their results.",
    }),
    message ? el("p", { class: "notice", role: "status", text: message }) : null,
    el("p", {}, el("a", { class: "button", href: loginUrl(), id: "login", text: how })),
  );
}

setUnauthorizedHandler(() => {
  showLogin("You are not logged in, or your session has expired: log in again.");
});

function leave() {
  if (current && current.leave) current.leave();
  current = null;
}

function markSection(hash) {
  for (const link of document.querySelectorAll("#nav a")) {
    const active = hash.startsWith(`#/${link.dataset.section}`);
    if (active) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

async function route() {
  const hash = location.hash || "#/workflows";
  if (!hash.startsWith("#/")) return; // an in-page anchor such as the skip link
  if (!getToken()) {
    await showLogin();
    return;
  }
  leave();
  try {
    await showSession();
  } catch (error) {
    if (error instanceof NotLoggedIn) return;
    showError(error);
    return;
  }
  markSection(hash);
  const match = ROUTES.map(([pattern, page]) => [hash.match(pattern), page]).find(([m]) => m);
  replace(main, el("p", { class: "muted", text: "Loading…" }));
  try {
    const page = match
      ? await match[1](match[0])
      : { title: "Not found", nodes: [el("h1", { text: "Page not found" })] };
    current = page;
    document.title = `${page.title} · HPCWaaS`;
    replace(main, ...page.nodes);
    // Move focus to the new page so keyboard and screen-reader users start there.
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      heading.focus({ preventScroll: true });
    }
    page.shown?.();
  } catch (error) {
    if (error instanceof NotLoggedIn) return;
    showError(error);
  }
}

function showError(error) {
  const title = error instanceof Unreachable ? "Cannot reach the server" : "Something went wrong";
  replace(
    main,
    el("h1", { text: title }),
    el("p", { class: "error", role: "alert", text: error.message }),
    el("p", {}, el("a", { href: "#/workflows", text: "Back to the workflows" })),
  );
}

/** Show who is logged in, once per token; throws NotLoggedIn when the token is refused. */
async function showSession() {
  if (!document.getElementById("session").hidden) return;
  const me = await get("/users/me");
  document.getElementById("whoami").textContent = me.display_name || me.user_id;
  document.getElementById("nav").hidden = false;
  document.getElementById("session").hidden = false;
}

async function start() {
  document.getElementById("logout").addEventListener("click", async () => {
    try {
      await call("DELETE", "/auth/token");
    } catch {
      // the token may be gone already: logging out locally is what matters
    }
    forgetToken();
    await showLogin("You are logged out.");
  });
  window.addEventListener("hashchange", route);
  await route();
}

start();
