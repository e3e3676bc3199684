// One execution followed live: status, inputs, steps as a graph and a timeline, outputs, logs.

import {
  ApiError,
  call,
  followEvents,
  get,
  getToken,
  isTerminal,
  seg,
} from "./api.js";
import { announce, badge, confirmDialog, el, formatTime, liveDuration, replace } from "./dom.js";
import { renderDag, renderGraph } from "./dag.js";
import { renderTimeline } from "./timeline.js";

const LEVELS = ["DEBUG", "INFO", "WARN", "ERROR"];

/** A list item downloading `blob` as `filename`, its size beside. */
function downloadItem(name, filename, size, onClick) {
  const link = el("a", {
    href: "#",
    download: filename,
    class: "button secondary",
    text: `Download ${name}`,
    dataset: { output: name },
  });
  link.addEventListener("click", onClick);
  return el("li", {}, link, el("span", { class: "muted", text: ` ${filename}, ${size} bytes` }));
}

/** One of the workflow's text outputs, downloaded from the page's own copy. */
function textOutputItem(name, value, urls) {
  const isText = typeof value === "string";
  const blob = new Blob([isText ? value : JSON.stringify(value, null, 2)], {
    type: isText ? "text/plain" : "application/json",
  });
  const filename = `${name}${isText ? ".txt" : ".json"}`;
  const url = URL.createObjectURL(blob);
  urls.push(url);
  const item = downloadItem(name, filename, blob.size, () => {});
  item.querySelector("a").href = url;
  return item;
}

/** A file a stage_out step stored: fetched with the token when asked for, then saved. */
function storedOutputItem(executionId, output, urls) {
  return downloadItem(output.name, output.file_name, output.size, async (event) => {
    const link = event.currentTarget;
    if (link.dataset.ready) return; // the second click follows the blob's URL
    event.preventDefault();
    const response = await fetch(
      `/executions/${seg(executionId)}/outputs/${seg(output.name)}`,
      { headers: { Authorization: `Bearer ${getToken()}` }, cache: "no-store" },
    );
    if (!response.ok) {
      announce(`The download of ${output.name} failed (HTTP ${response.status})`);
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    urls.push(url);
    link.href = url;
    link.dataset.ready = "yes";
    link.click();
  });
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

  /** Everything the execution gives back, as `waas executions outputs` lists it: the
   * workflow's outputs, then the files its stage_out steps stored. */
  async function showOutputs(ex) {
    let stored = [];
    try {
      stored = (await get(`/executions/${seg(executionId)}/outputs`)).outputs;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
    }
    const items = [
      ...Object.entries(ex.outputs || {}).map(([k, v]) => textOutputItem(k, v, blobUrls)),
      ...stored.map((output) => storedOutputItem(executionId, output, blobUrls)),
    ];
    if (!items.length) return;
    replace(
      outputsNode,
      el("h2", { id: "outputs-title", text: "Outputs" }),
      el("ul", { class: "outputs" }, items),
    );
    outputsNode.hidden = false;
  }

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
    if (isTerminal(ex.status) && !outputsShown) {
      outputsShown = true;
      showOutputs(ex);
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
