// The steps of an execution as a layered DAG: each layer holds the steps whose needs are all
// in earlier layers. Drawn twice: as a graph (inline SVG, one arrow per dependency, each step
// coloured by its state) and as a list of stages with the details. Every step shows its state
// in words; colour only repeats it.

import { badge, el, formatDuration, svg } from "./dom.js";

const NODE_W = 150;
const NODE_H = 44;
const GAP_X = 56;
const GAP_Y = 14;
const MAX_NAME = 18; // characters of a step's name drawn in its box; the list has it whole

let graphs = 0; // a distinct arrowhead ID per graph drawn

/** The DAG as an SVG picture: a box per step, an arrow from each need to its step. */
export function renderGraph(steps) {
  const columns = layers(steps);
  const height = Math.max(...columns.map((c) => c.length), 1) * (NODE_H + GAP_Y) - GAP_Y;
  const width = columns.length * (NODE_W + GAP_X) - GAP_X;
  const place = new Map();
  columns.forEach((column, x) => {
    const top = (height - (column.length * (NODE_H + GAP_Y) - GAP_Y)) / 2;
    column.forEach((step, y) => {
      place.set(step.name, { x: x * (NODE_W + GAP_X), y: top + y * (NODE_H + GAP_Y) });
    });
  });
  graphs += 1;
  const arrow = `dag-arrow-${graphs}`;
  const edges = [];
  for (const step of steps) {
    const to = place.get(step.name);
    for (const need of step.needs || []) {
      const from = place.get(need);
      if (!from) continue;
      const [x1, y1] = [from.x + NODE_W, from.y + NODE_H / 2];
      const [x2, y2] = [to.x - 2, to.y + NODE_H / 2];
      const bend = (x2 - x1) / 2;
      edges.push(
        svg("path", {
          class: "edge",
          d: `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`,
          "marker-end": `url(#${arrow})`,
          dataset: { from: need, to: step.name },
        }),
      );
    }
  }
  const nodes = steps.map((step) => {
    const { x, y } = place.get(step.name);
    const name = step.name.length > MAX_NAME ? `${step.name.slice(0, MAX_NAME - 1)}…` : step.name;
    return svg(
      "g",
      {
        class: `node state-${step.state.toLowerCase()}`,
        transform: `translate(${x},${y})`,
        dataset: { node: step.name, state: step.state },
      },
      svg("title", { text: `${step.name}: ${step.state}` }),
      svg("rect", { width: NODE_W, height: NODE_H, rx: 6 }),
      svg("text", { class: "node-name", x: 10, y: 18, text: name }),
      svg("text", { class: "node-state", x: 10, y: 36, text: step.state }),
    );
  });
  return svg(
    "svg",
    {
      class: "dag-graph",
      viewBox: `-4 -4 ${width + 8} ${height + 8}`,
      width: width + 8,
      role: "img",
      "aria-label": `Graph of ${steps.length} steps; each arrow goes from a step to one that needs it`,
    },
    svg(
      "defs",
      {},
      svg(
        "marker",
        {
          id: arrow,
          viewBox: "0 0 10 10",
          refX: 9,
          refY: 5,
          markerWidth: 7,
          markerHeight: 7,
          orient: "auto-start-reverse",
        },
        svg("path", { class: "arrowhead", d: "M0,0 L10,5 L0,10 z" }),
      ),
    ),
    edges,
    nodes,
  );
}

/** Group steps by depth (0: no needs); unknown needs count as met. */
export function layers(steps) {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const depth = new Map();
  const visiting = new Set();
  const depthOf = (name) => {
    if (depth.has(name)) return depth.get(name);
    if (visiting.has(name)) return 0; // a cycle cannot be run anyway; do not loop
    visiting.add(name);
    const needs = (byName.get(name).needs || []).filter((n) => byName.has(n));
    const value = needs.length ? 1 + Math.max(...needs.map(depthOf)) : 0;
    visiting.delete(name);
    depth.set(name, value);
    return value;
  };
  const result = [];
  for (const step of steps) {
    const d = depthOf(step.name);
    (result[d] ||= []).push(step);
  }
  return result.filter(Boolean);
}

/** What Slurm's accounting (sacct) kept of a step's job, as a small list of facts. */
function accountingList(accounting) {
  const facts = [
    ["Slurm state", accounting.state],
    ["exit code", accounting.exit_code],
    ["elapsed", accounting.elapsed_seconds === null ? null : `${accounting.elapsed_seconds} s`],
    ["CPU time", accounting.cpu_seconds === null ? null : `${accounting.cpu_seconds.toFixed(1)} s`],
    [
      "max RSS",
      accounting.max_rss_bytes === null
        ? null
        : `${(accounting.max_rss_bytes / 2 ** 20).toFixed(1)} MiB`,
    ],
  ].filter(([, value]) => value !== null && value !== undefined);
  return el(
    "dl",
    { class: "step-accounting", "aria-label": "Slurm accounting" },
    facts.map(([name, value]) => [el("dt", { text: name }), el("dd", { text: String(value) })]),
  );
}

export function renderDag(steps) {
  return el(
    "ol",
    { class: "dag", "aria-label": "Steps, in the order they can run" },
    layers(steps).map((layer, index) =>
      el(
        "li",
        { class: "layer" },
        el("h3", { class: "layer-title", text: `Stage ${index + 1}` }),
        el(
          "ul",
          {},
          layer.map((step) =>
            el(
              "li",
              {
                class: `step state-${step.state.toLowerCase()}`,
                dataset: { step: step.name, state: step.state },
              },
              el("span", { class: "step-name", text: step.name }),
              badge(step.state),
              step.needs && step.needs.length
                ? el("span", { class: "step-needs", text: `after ${step.needs.join(", ")}` })
                : null,
              step.started_at
                ? el("span", {
                    class: "step-time",
                    text: formatDuration(step.started_at, step.ended_at),
                  })
                : null,
              step.job_id ? el("span", { class: "step-job", text: `job ${step.job_id}` }) : null,
              step.environment_id
                ? el("span", { class: "step-env", text: `on ${step.environment_id}` })
                : null,
              step.accounting ? accountingList(step.accounting) : null,
            ),
          ),
        ),
      ),
    ),
  );
}
