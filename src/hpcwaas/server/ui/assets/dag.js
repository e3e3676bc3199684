// The steps of an execution as a layered DAG: each layer holds the steps whose needs are all
// in earlier layers. Every step shows its state in words; colour only repeats it.

import { badge, el, formatDuration } from "./dom.js";

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
            ),
          ),
        ),
      ),
    ),
  );
}
