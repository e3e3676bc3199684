// Executions: the user's list with filters, and one execution followed live.

import { ApiError, call, followEvents, get, isTerminal, seg } from "./api.js";
import { announce, badge, confirmDialog, el, formatDuration, formatTime, replace } from "./dom.js";
import { renderDag } from "./dag.js";

const STATUSES = ["PENDING", "RUNNING", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED"];
const LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"];

function labelled(id, label, control) {
  control.id = id;
  return el("div", { class: "field inline" }, el("label", { for: id, text: label }), control);
}

export async function executionListPage() {
  const { workflows } = await get("/workflows");
  const statusSelect = el(
    "select",
    { name: "status" },
    el("option", { value: "", text: "Any status" }),
    STATUSES.map((s) => el("option", { value: s, text: s })),
  );
  const workflowSelect = el(
    "select",
    { name: "workflow_id" },
    el("option", { value: "", text: "Any workflow" }),
    workflows.map((wf) => el("option", { value: wf.id, text: wf.id })),
  );
  const body = el("tbody");
  const more = el("button", {
    type: "button",
    class: "secondary",
    hidden: true,
    text: "Show more",
  });
  const summary = el("p", { class: "muted", role: "status" });
  let cursor = null;
  let shown = 0;

  async function load(reset) {
    if (reset) {
      replace(body);
      cursor = null;
      shown = 0;
    }
    const page = await get("/executions", {
      query: {
        limit: 25,
        cursor,
        status: statusSelect.value,
        workflow_id: workflowSelect.value,
      },
    });
    for (const ex of page.executions) {
      body.append(
        el(
          "tr",
          {},
          el(
            "td",
            {},
            el("a", {
              href: `#/executions/${seg(ex.id)}`,
              text: ex.id.slice(0, 8),
              "aria-label": `Execution ${ex.id}`,
            }),
          ),
          el("td", {}, el("code", { text: ex.workflow_id })),
          el("td", {}, badge(ex.status)),
          el("td", { text: formatTime(ex.started_at || ex.created_at) }),
          el("td", { text: formatDuration(ex.started_at, ex.ended_at) }),
        ),
      );
    }
    shown += page.executions.length;
    cursor = page.next_cursor;
    more.hidden = !cursor;
    summary.textContent = shown ? `${shown} execution(s) shown.` : "No execution matches.";
  }

  const filters = el(
    "form",
    { class: "filters", "aria-label": "Filter executions" },
    labelled("filter-status", "Status", statusSelect),
    labelled("filter-workflow", "Workflow", workflowSelect),
  );
  filters.addEventListener("change", () => load(true));
  filters.addEventListener("submit", (event) => event.preventDefault());
  more.addEventListener("click", () => load(false));
  await load(true);

  return {
    title: "Executions",
    nodes: [
      el("h1", { text: "Executions" }),
      filters,
      summary,
      el(
        "div",
        { class: "table-wrap" },
        el(
          "table",
          {},
          el("caption", { class: "visually-hidden", text: "Your executions, newest first" }),
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              ["Execution", "Workflow", "Status", "Started", "Duration"].map((h) =>
                el("th", { scope: "col", text: h }),
              ),
            ),
          ),
          body,
        ),
      ),
      more,
    ],
  };
}

function outputLink(name, value, urls) {
  const isText = typeof value === "string";
  const blob = new Blob([isText ? value : JSON.stringify(value, null, 2)], {
    type: isText ? "text/plain" : "application/json",
  });
  const filename = `${name}${isText ? ".txt" : ".json"}`;
  const url = URL.createObjectURL(blob);
  urls.push(url);
  return el(
    "li",
    {},
    el("a", {
      href: url,
      download: filename,
      class: "button secondary",
      text: `Download ${name}`,
      dataset: { output: name },
    }),
    el("span", { class: "muted", text: ` ${filename}, ${blob.size} bytes` }),
  );
}

export async function executionPage(executionId) {
  const initial = await get(`/executions/${seg(executionId)}`);
  const controller = new AbortController();
  const statusNode = el("p", { class: "status-line", role: "status", "aria-live": "polite" });
  const facts = el("dl", { class: "facts" });
  const dagNode = el("div", { class: "dag-wrap" });
  const outputsNode = el("section", { "aria-labelledby": "outputs-title", hidden: true });
  const connection = el("span", { class: "muted connection" });
  const logList = el("ol", {
    class: "log",
    role: "log",
    "aria-label": "Log entries",
    tabindex: "0",
  });
  const follow = el("input", { type: "checkbox", id: "follow-tail", checked: true });
  const levelBoxes = LEVELS.map((level) =>
    el("input", {
      type: "checkbox",
      id: `level-${level.toLowerCase()}`,
      checked: level !== "DEBUG",
      dataset: { level },
    }),
  );
  const cancelButton = el("button", { type: "button", class: "danger", text: "Cancel execution" });
  const entries = [];
  const blobUrls = []; // the outputs' downloads, released when leaving the page
  let outputsShown = false;
  let lastStatus = null;

  const visibleLevels = () =>
    new Set(levelBoxes.filter((box) => box.checked).map((box) => box.dataset.level));

  function logLine(entry) {
    return el(
      "li",
      { class: `log-entry level-${entry.level.toLowerCase()}` },
      el("span", { class: "log-level", text: entry.level }),
      el("time", { datetime: entry.timestamp, text: formatTime(entry.timestamp) }),
      entry.step ? el("span", { class: "log-step", text: entry.step }) : null,
      el("span", { class: "log-content", text: entry.content }),
    );
  }

  function scrollTail() {
    if (follow.checked) logList.scrollTop = logList.scrollHeight;
  }

  function renderLogs() {
    const levels = visibleLevels();
    replace(logList, ...entries.filter((e) => levels.has(e.level)).map(logLine));
    scrollTail();
  }

  function renderStatus(ex) {
    replace(statusNode, "Status: ", badge(ex.status));
    replace(
      facts,
      el("dt", { text: "Workflow" }),
      el(
        "dd",
        {},
        el(
          "a",
          { href: `#/workflows/${seg(ex.workflow_id)}` },
          el("code", { text: ex.workflow_id }),
        ),
      ),
      el("dt", { text: "Triggered" }),
      el("dd", { text: formatTime(ex.created_at) }),
      el("dt", { text: "Started" }),
      el("dd", { text: formatTime(ex.started_at) }),
      el("dt", { text: "Duration" }),
      el("dd", { text: formatDuration(ex.started_at, ex.ended_at) }),
      ex.error ? el("dt", { text: "Error" }) : null,
      ex.error ? el("dd", { class: "error", text: ex.error }) : null,
    );
    replace(dagNode, renderDag(ex.steps || []));
    cancelButton.hidden = isTerminal(ex.status) || ex.status === "CANCELLING";
    if (ex.outputs && Object.keys(ex.outputs).length && !outputsShown) {
      outputsShown = true;
      replace(
        outputsNode,
        el("h2", { id: "outputs-title", text: "Outputs" }),
        el(
          "ul",
          { class: "outputs" },
          Object.entries(ex.outputs).map(([k, v]) => outputLink(k, v, blobUrls)),
        ),
      );
      outputsNode.hidden = false;
    }
    if (lastStatus !== null && lastStatus !== ex.status) announce(`Execution ${ex.status}`);
    lastStatus = ex.status;
  }

  cancelButton.addEventListener("click", async () => {
    const yes = await confirmDialog({
      title: "Cancel this execution?",
      message: "Its running steps are stopped and it ends CANCELLED. This cannot be undone.",
      confirmLabel: "Cancel execution",
      cancelLabel: "Keep it running",
    });
    if (!yes) return;
    cancelButton.disabled = true;
    try {
      await call("DELETE", `/executions/${seg(executionId)}`);
      announce("Cancel requested");
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      announce(error.message);
      statusNode.append(el("span", { class: "error", text: ` ${error.message}` }));
    } finally {
      cancelButton.disabled = false;
    }
  });
  for (const box of levelBoxes) box.addEventListener("change", renderLogs);
  follow.addEventListener("change", scrollTail);
  renderStatus(initial);

  const levelFilter = el(
    "fieldset",
    { class: "levels" },
    el("legend", { text: "Show levels" }),
    levelBoxes.map((box) =>
      el("span", { class: "check" }, box, el("label", { for: box.id, text: box.dataset.level })),
    ),
    el(
      "span",
      { class: "check" },
      follow,
      el("label", { for: follow.id, text: "Follow the tail" }),
    ),
  );

  return {
    title: `Execution ${executionId.slice(0, 8)}`,
    nodes: [
      el("p", { class: "breadcrumb" }, el("a", { href: "#/executions", text: "Executions" })),
      el("h1", {}, "Execution ", el("code", { text: executionId })),
      statusNode,
      facts,
      cancelButton,
      el(
        "section",
        { "aria-labelledby": "steps-title" },
        el("h2", { id: "steps-title", text: "Steps" }),
        dagNode,
      ),
      outputsNode,
      el(
        "section",
        { "aria-labelledby": "logs-title" },
        el("h2", { id: "logs-title" }, "Logs ", connection),
        levelFilter,
        logList,
      ),
    ],
    shown() {
      followEvents(executionId, {
        signal: controller.signal,
        onLog(entry) {
          entries.push(entry);
          if (visibleLevels().has(entry.level)) {
            logList.append(logLine(entry));
            scrollTail();
          }
        },
        onStatus: renderStatus,
        onConnection(live) {
          connection.textContent = live ? "(live)" : "(reconnecting…)";
        },
      })
        .then(() => {
          if (!controller.signal.aborted) connection.textContent = "(complete)";
        })
        .catch((error) => {
          connection.textContent = `(stopped: ${error.message})`;
        });
    },
    leave() {
      controller.abort();
      for (const url of blobUrls) URL.revokeObjectURL(url);
    },
  };
}
