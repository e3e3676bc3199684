// A trigger form generated from a workflow's input schema, checked here and again by the server.

import { el } from "./dom.js";

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
// Types whose value is text, sent as typed.
const TEXT_TYPES = ["string", "path", "ssh_key", "secret"];
// How the API shows a secret input's value (it is never sent back).
const SECRET = "[secret]";

function fullMatch(pattern, text) {
  try {
    return new RegExp(`^(?:${pattern})$`, "u").test(text);
  } catch {
    return true; // a pattern this browser cannot read: the server checks it
  }
}

function typeHint(spec) {
  switch (spec.type) {
    case "integer":
      return "a whole number";
    case "number":
      return "a number";
    case "list":
      return `a list of ${spec.items || "string"} values, separated by commas`;
    case "path":
      return "a file or directory path";
    case "ssh_key":
      return "the ID of one of your SSH keys";
    case "secret":
      return "kept secret: never stored or shown";
    default:
      return null;
  }
}

function constraintHint(spec) {
  const parts = [];
  if (spec.minimum !== null && spec.minimum !== undefined) parts.push(`at least ${spec.minimum}`);
  if (spec.maximum !== null && spec.maximum !== undefined) parts.push(`at most ${spec.maximum}`);
  const unit = spec.type === "list" ? "items" : "characters";
  if (spec.min_length !== null && spec.min_length !== undefined) {
    parts.push(`at least ${spec.min_length} ${unit}`);
  }
  if (spec.max_length !== null && spec.max_length !== undefined) {
    parts.push(`at most ${spec.max_length} ${unit}`);
  }
  if (spec.pattern) parts.push(`matching ${spec.pattern}`);
  return parts.join(", ");
}

function control(spec, id, describedBy, value) {
  const common = { id, name: spec.name, "aria-describedby": describedBy };
  if (spec.type === "boolean") {
    return el("input", { ...common, type: "checkbox", checked: value === true });
  }
  if (spec.type === "enum") {
    const select = el("select", { ...common, required: spec.required });
    if (!spec.required && value === null) select.append(el("option", { value: "", text: "—" }));
    (spec.values || []).forEach((option, index) => {
      select.append(
        el("option", { value: String(index), text: String(option), selected: option === value }),
      );
    });
    return select;
  }
  const type = spec.type === "secret" ? "password" : "text";
  const attrs = { ...common, type, required: spec.required, autocomplete: "off" };
  if (spec.type === "integer" || spec.type === "number") {
    // A numeric field: the phone's number pad, arrows to step; the bounds are checked below.
    attrs.type = "number";
    attrs.step = spec.type === "integer" ? "1" : "any";
    attrs.min = spec.minimum;
    attrs.max = spec.maximum;
  }
  let text = "";
  if (Array.isArray(value)) text = value.join(", ");
  else if (value !== null && value !== undefined) text = String(value);
  return el("input", { ...attrs, value: text });
}

function scalar(kind, text, spec, what = "") {
  if (kind === "string") return text;
  if (kind === "boolean") {
    const lower = text.toLowerCase();
    if (["true", "yes", "1"].includes(lower)) return true;
    if (["false", "no", "0"].includes(lower)) return false;
    throw new Error(`${what}expected true or false, got ${JSON.stringify(text)}`);
  }
  const pattern = kind === "integer" ? INTEGER : NUMBER;
  if (!pattern.test(text)) {
    throw new Error(
      `${what}expected ${kind === "integer" ? "a whole number" : "a number"}, got ${JSON.stringify(text)}`,
    );
  }
  const number = Number(text);
  if (spec.minimum !== null && spec.minimum !== undefined && number < spec.minimum) {
    throw new Error(`${what}${number} is below the minimum ${spec.minimum}`);
  }
  if (spec.maximum !== null && spec.maximum !== undefined && number > spec.maximum) {
    throw new Error(`${what}${number} is above the maximum ${spec.maximum}`);
  }
  return number;
}

/** The value of one field, {omit: true} to let the server use the default, or an Error thrown. */
function readField(spec, input) {
  if (spec.type === "boolean") return { value: input.checked };
  if (spec.type === "enum") {
    if (input.value === "") {
      if (spec.required) throw new Error("choose one of the values");
      return { omit: true };
    }
    return { value: spec.values[Number(input.value)] };
  }
  if (input.validity?.badInput) {
    // a numeric field holding what is no number: the browser reports its value as ""
    throw new Error(`expected ${spec.type === "integer" ? "a whole number" : "a number"}`);
  }
  const textual = TEXT_TYPES.includes(spec.type);
  const text = textual ? input.value : input.value.trim();
  if (text === "") {
    if (spec.required && spec.type !== "list") throw new Error("this input is required");
    if (spec.type !== "list" && spec.type !== "string") return { omit: true };
  }
  if (textual) {
    if (spec.min_length != null && text.length < spec.min_length) {
      throw new Error(`too short: ${text.length} characters, at least ${spec.min_length}`);
    }
    if (spec.max_length != null && text.length > spec.max_length) {
      throw new Error(`too long: ${text.length} characters, at most ${spec.max_length}`);
    }
    if (spec.pattern && !fullMatch(spec.pattern, text)) {
      throw new Error(`does not match the pattern ${spec.pattern}`);
    }
    return { value: text };
  }
  if (spec.type === "list") {
    const parts = text === "" ? [] : text.split(",").map((part) => part.trim());
    if (spec.min_length != null && parts.length < spec.min_length) {
      throw new Error(`too few items: ${parts.length}, at least ${spec.min_length}`);
    }
    if (spec.max_length != null && parts.length > spec.max_length) {
      throw new Error(`too many items: ${parts.length}, at most ${spec.max_length}`);
    }
    const kind = spec.items || "string";
    return {
      value: parts.map((part, index) => {
        if (kind === "string" && spec.pattern && !fullMatch(spec.pattern, part)) {
          throw new Error(`item ${index}: does not match the pattern ${spec.pattern}`);
        }
        return scalar(kind, part, spec, `item ${index}: `);
      }),
    };
  }
  return { value: scalar(spec.type, text, spec) };
}

/**
 * The fields of a trigger form: one per declared input, plus `extra` specs (the cluster
 * account inputs). Returns {nodes, read(), showErrors(errors), clearErrors()}.
 */
/**
 * The form's fields. `values`: what to fill in instead of the defaults (a run again); a
 * secret shown as "[secret]" is left empty, to be typed again.
 */
export function inputFields(inputs, extraFields = [], values = {}) {
  const fields = new Map();
  const nodes = [];
  for (const spec of inputs) {
    const id = `input-${spec.name}`;
    const helpId = `${id}-help`;
    const errorId = `${id}-error`;
    const given = Object.hasOwn(values, spec.name) && values[spec.name] !== SECRET;
    const input = control(spec, id, `${helpId} ${errorId}`, given ? values[spec.name] : spec.default);
    const help = [spec.description, typeHint(spec), constraintHint(spec)].filter(Boolean);
    if (spec.default !== null && spec.default !== undefined && spec.type !== "boolean") {
      help.push(`default: ${Array.isArray(spec.default) ? spec.default.join(", ") : spec.default}`);
    }
    const error = el("p", { id: errorId, class: "field-error", hidden: true });
    const label = el(
      "label",
      { for: id },
      spec.name,
      spec.required ? el("span", { class: "required", text: " (required)" }) : null,
    );
    const wrapper =
      spec.type === "boolean"
        ? el("div", { class: "field checkbox" }, input, label)
        : el("div", { class: "field" }, label, input);
    wrapper.append(el("p", { id: helpId, class: "help", text: help.join(" · ") }), error);
    nodes.push(wrapper);
    fields.set(spec.name, { spec, input, error, wrapper });
  }
  for (const extra of extraFields) {
    fields.set(extra.spec.name, extra);
  }

  function setError(name, message) {
    const field = fields.get(name);
    if (!field) return false;
    field.error.textContent = message;
    field.error.hidden = false;
    field.input.setAttribute("aria-invalid", "true");
    field.wrapper.classList.add("invalid");
    return true;
  }

  function clearErrors() {
    for (const field of fields.values()) {
      field.error.textContent = "";
      field.error.hidden = true;
      field.input.removeAttribute("aria-invalid");
      field.wrapper.classList.remove("invalid");
    }
  }

  function firstInvalid() {
    for (const field of fields.values()) {
      if (field.input.getAttribute("aria-invalid") === "true") return field.input;
    }
    return null;
  }

  return {
    nodes,
    clearErrors,
    firstInvalid,
    /** {inputs, ok}: the values to send, after showing every problem found here. */
    read() {
      clearErrors();
      const values = {};
      let ok = true;
      for (const [name, field] of fields) {
        try {
          const result = field.read ? field.read() : readField(field.spec, field.input);
          if (!result.omit) values[name] = result.value;
        } catch (error) {
          ok = false;
          setError(name, error.message);
        }
      }
      return { inputs: values, ok };
    },
    /** Put the server's errors by their fields; returns those that concern no field. */
    showErrors(errors) {
      const general = [];
      for (const item of errors) {
        const name = item.source && item.source.input;
        if (!name || !setError(name, item.detail)) general.push(item.detail);
      }
      return general;
    },
  };
}
