// An execution's timeline: for each step, on one time axis, a bar for the time it was queued
// (its Slurm job PENDING), one for the time it ran, and a mark where it was done, coloured by
// how it ended, with its Slurm job ID. What an HPC user looks at to ask "why is it slow?".

import { formatDuration, svg } from "./dom.js";

const LABEL_W = 130; // the steps' names, left of the axis
const TRACK_W = 520;
const ROW_H = 26;
const BAR_H = 14;
const AXIS_H = 22;
const MAX_NAME = 16;

const ms = (iso) => new Date(iso).getTime();

/** An offset on the axis: tenths of a second on a short one, else as durations read. */
function tickLabel(offset, span) {
  if (span < 10000) return `${(offset / 1000).toFixed(1)} s`;
  return formatDuration(new Date(0), new Date(offset));
}

/** The bars of one step: [{phase, from, to}] in ms; queued only for Slurm jobs. */
export function phases(step, now) {
  if (!step.started_at) return [];
  const start = ms(step.started_at);
  const end = step.ended_at ? ms(step.ended_at) : now;
  // A job not seen running yet is waiting in Slurm's queue (as far as anyone knows).
  if (step.job_id && !step.running_at && !step.ended_at) {
    return [{ phase: "queued", from: start, to: now }];
  }
  const running = step.running_at ? Math.min(ms(step.running_at), end) : null;
  const bars = [];
  if (running !== null) bars.push({ phase: "queued", from: start, to: running });
  bars.push({ phase: "running", from: running ?? start, to: end });
  if (step.ended_at) bars.push({ phase: "done", from: end, to: end });
  return bars;
}

function describe(step, bars) {
  const parts = [step.name];
  for (const bar of bars) {
    if (bar.phase === "done") parts.push(`done: ${step.state}`);
    else parts.push(`${bar.phase} ${formatDuration(new Date(bar.from), new Date(bar.to))}`);
  }
  if (step.job_id) parts.push(`Slurm job ${step.job_id}`);
  if (step.environment_id) parts.push(`on ${step.environment_id}`);
  return parts.join(", ");
}

/** The timeline as an SVG picture, or null while no step has started. */
export function renderTimeline(steps, now = Date.now()) {
  const started = steps.filter((s) => s.started_at);
  if (!started.length) return null;
  const rows = started.map((step) => ({ step, bars: phases(step, now) }));
  const t0 = Math.min(...rows.map((r) => r.bars[0].from));
  const t1 = Math.max(...rows.flatMap((r) => r.bars.map((b) => b.to)), t0 + 1000);
  const x = (t) => LABEL_W + ((t - t0) / (t1 - t0)) * TRACK_W;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => {
    const at = t0 + f * (t1 - t0);
    return svg(
      "g",
      { class: "tick" },
      svg("line", { x1: x(at), x2: x(at), y1: AXIS_H - 4, y2: AXIS_H + rows.length * ROW_H }),
      svg("text", {
        x: x(at),
        y: AXIS_H - 8,
        "text-anchor": f === 0 ? "start" : f === 1 ? "end" : "middle",
        text: tickLabel(at - t0, t1 - t0),
      }),
    );
  });
  const lines = rows.map(({ step, bars }, i) => {
    const y = AXIS_H + i * ROW_H + (ROW_H - BAR_H) / 2;
    const name = step.name.length > MAX_NAME ? `${step.name.slice(0, MAX_NAME - 1)}…` : step.name;
    const last = bars[bars.length - 1];
    return svg(
      "g",
      { class: "row", dataset: { row: step.name } },
      svg("title", { text: describe(step, bars) }),
      svg("text", { class: "row-name", x: 0, y: y + BAR_H - 2, text: name }),
      bars.map((bar) =>
        svg("rect", {
          class:
            bar.phase === "done"
              ? `bar done state-${step.state.toLowerCase()}`
              : `bar ${bar.phase}`,
          x: bar.phase === "done" ? x(bar.to) - 3 : x(bar.from),
          y: bar.phase === "done" ? y - 3 : y,
          width: bar.phase === "done" ? 6 : Math.max(x(bar.to) - x(bar.from), 1),
          height: bar.phase === "done" ? BAR_H + 6 : BAR_H,
          dataset: { phase: bar.phase },
        }),
      ),
      step.job_id
        ? svg("text", {
            class: "row-job",
            x: Math.min(x(last.to) + 6, LABEL_W + TRACK_W + 4),
            y: y + BAR_H - 2,
            text: `job ${step.job_id}`,
          })
        : null,
    );
  });
  const width = LABEL_W + TRACK_W + 90;
  const height = AXIS_H + rows.length * ROW_H + 4;
  return svg(
    "svg",
    {
      class: "timeline",
      viewBox: `0 0 ${width} ${height}`,
      width,
      role: "img",
      "aria-label": rows.map((r) => describe(r.step, r.bars)).join("; "),
    },
    ticks,
    lines,
  );
}
