// Executions: the user's list with filters, and one execution followed live.

import { ApiError, call, followEvents, followExecutionList, get, isTerminal, seg } from "./api.js";
import { announce, badge, confirmDialog, el, formatTime, liveDuration, replace } from "./dom.js";
import { renderDag, renderGraph } from "./dag.js";
import { renderTimeline } from "./timeline.js";

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
  const controller = new AbortController();
  const PAGE = 25;
  let cursor = null;

  function row(ex) {
    // data-label: the column's name, shown beside the value when rows become cards (phones)
    return el(
      "tr",
      { dataset: { execution: ex.id, created: ex.created_at } },
      el(
        "td",
        { dataset: { label: "Execution" } },
        el("a", {
          href: `#/executions/${seg(ex.id)}`,
          text: ex.id.slice(0, 8),
          "aria-label": `Execution ${ex.id}`,
        }),
      ),
      el("td", { dataset: { label: "Workflow" } }, el("code", { text: ex.workflow_id })),
      el("td", { dataset: { label: "Status" } }, badge(ex.status)),
      el("td", { dataset: { label: "Started" }, text: formatTime(ex.started_at || ex.created_at) }),
      el(
        "td",
        { dataset: { label: "Duration" } },
        liveDuration(ex.started_at, isTerminal(ex.status) ? ex.ended_at || ex.started_at : null),
      ),
    );
  }

  function count() {
    const shown = body.rows.length;
    more.hidden = !cursor;
    summary.textContent = shown ? `${shown} execution(s) shown.` : "No execution matches.";
  }

  /** The first page as the server sent it again: new rows on top, changed rows in place. */
  function refresh(page) {
    const fresh = new Set(page.executions.map((ex) => ex.id));
    const oldest = page.executions.at(-1)?.created_at;
    for (const tr of [...body.rows]) {
      // gone from the page's range (no longer matching the filter, or removed)
      const inRange = !page.next_cursor || (oldest && tr.dataset.created >= oldest);
      if (inRange && !fresh.has(tr.dataset.execution)) tr.remove();
    }
    let before = body.firstChild;
    for (const ex of page.executions) {
      const existing = body.querySelector(`tr[data-execution="${CSS.escape(ex.id)}"]`);
      const node = row(ex);
      if (existing) {
        existing.replaceWith(node);
      } else {
        body.insertBefore(node, before);
      }
      before = node.nextSibling;
    }
    if (cursor === null || body.rows.length <= PAGE) cursor = page.next_cursor;
    count();
  }

  async function load(reset) {
    if (reset) {
      replace(body);
      cursor = null;
    }
    const page = await get("/executions", {
      query: { limit: PAGE, cursor, status: statusSelect.value, workflow_id: workflowSelect.value },
    });
    body.append(...page.executions.map(row));
    cursor = page.next_cursor;
    count();
  }

  let following = null;
  function follow() {
    following?.abort();
    following = new AbortController();
    controller.signal.addEventListener("abort", () => following.abort());
    const query = { limit: PAGE, status: statusSelect.value, workflow_id: workflowSelect.value };
    followExecutionList(query, { signal: following.signal, onPage: refresh }).catch(() => {
      // logged out (the page moved to the login screen) or refused: the list stays as is
    });
  }

  const filters = el(
    "form",
    { class: "filters", "aria-label": "Filter executions" },
    labelled("filter-status", "Status", statusSelect),
    labelled("filter-workflow", "Workflow", workflowSelect),
  );
  filters.addEventListener("change", async () => {
    await load(true);
    follow();
  });
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
    shown: follow,
    leave() {
      controller.abort();
    },
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
  const graphNode = el("div", { class: "graph-wrap" });
  const dagNode = el("div", { class: "dag-wrap" });
  const timelineNode = el("div", { class: "timeline-wrap" });
  const inputsNode = el("section", { "aria-labelledby": "inputs-title" });
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

  let lastSteps = [];
  let inputsShown = false;

  function drawTimeline() {
    const picture = renderTimeline(lastSteps);
    replace(timelineNode, picture || el("p", { class: "muted", text: "No step has started yet." }));
  }
  // While steps run, their bars grow with the clock.
  const timelineTimer = setInterval(() => {
    if (lastSteps.some((step) => step.started_at && !step.ended_at)) drawTimeline();
  }, 1000);

  function inputValue(value) {
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  function renderInputs(ex) {
    if (inputsShown || !ex.inputs) return;
    inputsShown = true;
    const names = Object.keys(ex.inputs);
    replace(
      inputsNode,
      el("h2", { id: "inputs-title", text: "Inputs" }),
      names.length
        ? el(
            "dl",
            { class: "facts inputs" },
            names.map((name) => [
              el("dt", {}, el("code", { text: name })),
              el("dd", { class: "wrap", text: inputValue(ex.inputs[name]) }),
            ]),
          )
        : el("p", { text: "It ran without inputs." }),
      el("a", {
        class: "button secondary",
        href: `#/workflows/${seg(ex.workflow_id)}?from=${seg(ex.id)}`,
        text: "Run again",
        title: "The workflow's form, filled in with these inputs",
      }),
    );
  }

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
      el("dd", {}, liveDuration(ex.started_at, isTerminal(ex.status) ? ex.ended_at : null)),
      ex.error ? el("dt", { text: "Error" }) : null,
      ex.error ? el("dd", { class: "error", text: ex.error }) : null,
    );
    replace(graphNode, (ex.steps || []).length ? renderGraph(ex.steps) : null);
    replace(dagNode, renderDag(ex.steps || []));
    lastSteps = ex.steps || [];
    drawTimeline();
    renderInputs(ex);
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
      inputsNode,
      el(
        "section",
        { "aria-labelledby": "steps-title" },
        el("h2", { id: "steps-title", text: "Steps" }),
        graphNode,
        dagNode,
      ),
      el(
        "section",
        { "aria-labelledby": "timeline-title" },
        el("h2", { id: "timeline-title", text: "Timeline" }),
        el("p", {
          class: "muted legend",
          text: "Per step, on one time axis: queued (its Slurm job pending), running, done.",
        }),
        timelineNode,
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
        onConnection(state) {
          connection.textContent = {
            live: "(live)",
            reconnecting: "(reconnecting…)",
            unreachable: "(cannot reach the server, retrying…)",
          }[state];
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
      clearInterval(timelineTimer);
      for (const url of blobUrls) URL.revokeObjectURL(url);
    },
  };
}
