// Executions: the user's list with filters, kept current by the list's event stream.

import { followExecutionList, get, isTerminal, seg } from "./api.js";
import { badge, el, formatTime, liveDuration, replace } from "./dom.js";

const STATUSES = ["PENDING", "RUNNING", "CANCELLING", "SUCCEEDED", "FAILED", "CANCELLED"];

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
    // the stream of the old filter stops first: a page of it must not land in the new list
    following?.abort();
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
