// Workflows: the list the user may run, and one workflow's trigger form.

import { ApiError, call, get, seg } from "./api.js";
import { el, replace } from "./dom.js";
import { inputFields } from "./form.js";

const RESERVED = ["user_id", "vault_id"];

export async function workflowListPage() {
  const { workflows } = await get("/workflows");
  const items = workflows.map((wf) =>
    el(
      "li",
      { class: "card" },
      el("h2", {}, el("a", { href: `#/workflows/${seg(wf.id)}`, text: wf.name })),
      el("p", { text: wf.description || "No description." }),
      el(
        "p",
        { class: "muted" },
        `Application ${wf.application_id} on ${wf.environment_name} · `,
        el("code", { text: wf.id }),
      ),
    ),
  );
  return {
    title: "Workflows",
    nodes: [
      el("h1", { text: "Workflows" }),
      el("p", { text: "The workflows you may run. Open one to fill in its inputs and start it." }),
      items.length
        ? el("ul", { class: "cards" }, items)
        : el("p", { class: "notice", text: "No workflow is published for you yet." }),
    ],
  };
}

/** The cluster account fields (user_id, vault_id) of a workflow that runs over SSH. */
function identityFields(environment, keys) {
  const registered = environment.identity;
  const loginInput = el("input", {
    id: "input-user_id",
    name: "user_id",
    type: "text",
    autocomplete: "off",
    list: "known-logins",
    placeholder: registered ? registered.login : "",
    "aria-describedby": "input-user_id-help input-user_id-error",
  });
  const keySelect = el(
    "select",
    {
      id: "input-vault_id",
      name: "vault_id",
      "aria-describedby": "input-vault_id-help input-vault_id-error",
    },
    el("option", {
      value: "",
      text: registered ? `Registered default (${registered.key_id})` : "— choose a key —",
    }),
    keys.map((key) =>
      el("option", { value: key.id, text: `${key.key_type} ${key.fingerprint} (${key.id})` }),
    ),
  );
  const make = (name, label, input, help) => {
    const error = el("p", { id: `input-${name}-error`, class: "field-error", hidden: true });
    const wrapper = el(
      "div",
      { class: "field" },
      el("label", { for: `input-${name}`, text: label }),
      input,
      el("p", { id: `input-${name}-help`, class: "help", text: help }),
      error,
    );
    return {
      spec: { name },
      input,
      error,
      wrapper,
      read: () => (input.value.trim() ? { value: input.value.trim() } : { omit: true }),
    };
  };
  const login = make(
    "user_id",
    "Cluster login (user_id)",
    loginInput,
    registered
      ? `Empty: your registered login ${registered.login}.`
      : "Your account on the cluster. Register a default on the SSH keys page.",
  );
  const key = make(
    "vault_id",
    "SSH key (vault_id)",
    keySelect,
    "The key whose public half is in your authorized_keys on the cluster.",
  );
  const datalist = el(
    "datalist",
    { id: "known-logins" },
    registered ? el("option", { value: registered.login }) : null,
  );
  const fieldset = el(
    "fieldset",
    {},
    el("legend", { text: `Cluster account on ${environment.name}` }),
    login.wrapper,
    datalist,
    key.wrapper,
  );
  return { fieldset, fields: [login, key] };
}

/** A workflow and its trigger form; `fromExecution`: an execution whose inputs fill it. */
export async function workflowPage(workflowId, fromExecution = null) {
  const [workflow, environments, keys, previous] = await Promise.all([
    get(`/workflows/${seg(workflowId)}`),
    get("/environments"),
    get("/ssh_keys", { query: { limit: 100 } }),
    fromExecution ? get(`/executions/${seg(fromExecution)}`) : null,
  ]);
  const environment = environments.environments.find((e) => e.id === workflow.environment_id);
  const declared = workflow.inputs.filter((spec) => !RESERVED.includes(spec.name));
  let identity = null;
  if (environment && environment.kind !== "local") {
    identity = identityFields(environment, keys.ssh_keys);
  }
  const form = inputFields(declared, identity ? identity.fields : [], previous?.inputs || {});
  const secretsToRetype = previous
    ? declared.filter((spec) => spec.type === "secret").map((spec) => spec.name)
    : [];
  const alert = el("div", { class: "form-alert", role: "alert", hidden: true });
  const submit = el("button", { type: "submit", text: "Run workflow" });
  const formNode = el(
    "form",
    { novalidate: true, "aria-labelledby": "form-title" },
    el("h2", { id: "form-title", text: "Inputs" }),
    previous
      ? el(
          "p",
          { class: "notice", id: "run-again-note" },
          `Filled in with the inputs of execution ${previous.id.slice(0, 8)}.`,
          secretsToRetype.length ? ` Type the secrets again: ${secretsToRetype.join(", ")}.` : "",
        )
      : null,
    declared.length ? form.nodes : el("p", { text: "This workflow takes no inputs." }),
    identity ? identity.fieldset : null,
    alert,
    submit,
  );

  function showAlert(messages) {
    replace(
      alert,
      el("p", { text: "The workflow was not started:" }),
      el(
        "ul",
        {},
        messages.map((m) => el("li", { text: m })),
      ),
    );
    alert.hidden = false;
  }

  formNode.addEventListener("submit", async (event) => {
    event.preventDefault();
    alert.hidden = true;
    const { inputs, ok } = form.read();
    if (!ok) {
      form.firstInvalid()?.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Starting…";
    try {
      const response = await call("POST", `/workflows/${seg(workflow.id)}`, { body: { inputs } });
      const location = response.headers.get("Location") || "";
      const executionId = location.split("/").pop();
      window.location.hash = `#/executions/${seg(executionId)}`;
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      const general = form.showErrors(error.errors);
      if (general.length) showAlert(general);
      (form.firstInvalid() || alert).focus?.();
    } finally {
      submit.disabled = false;
      submit.textContent = "Run workflow";
    }
  });
  alert.setAttribute("tabindex", "-1");

  return {
    title: workflow.name,
    nodes: [
      el("p", { class: "breadcrumb" }, el("a", { href: "#/workflows", text: "Workflows" })),
      el("h1", { text: workflow.name }),
      el("p", { text: workflow.description || "No description." }),
      el(
        "dl",
        { class: "facts" },
        el("dt", { text: "Workflow ID" }),
        el("dd", {}, el("code", { text: workflow.id })),
        el("dt", { text: "Environment" }),
        el("dd", { text: workflow.environment_name }),
        el("dt", { text: "Steps" }),
        el("dd", { text: workflow.steps.join(", ") }),
        workflow.outputs.length ? el("dt", { text: "Outputs" }) : null,
        workflow.outputs.length ? el("dd", { text: workflow.outputs.join(", ") }) : null,
      ),
      formNode,
    ],
  };
}
