// SSH keys: generate (the public half shown once), list, delete; default cluster accounts.

import { ApiError, call, get, seg } from "./api.js";
import { announce, confirmDialog, copyText, el, formatTime, replace } from "./dom.js";

function copyable(id, label, text) {
  const button = el("button", { type: "button", class: "secondary", text: `Copy ${label}` });
  button.addEventListener("click", () => copyText(text, button));
  return [el("pre", { id, class: "copyable", tabindex: "0", text }), button];
}

function errorText(error) {
  if (error instanceof ApiError) return error.errors.map((e) => e.detail).join("; ");
  throw error;
}

export async function keysPage() {
  const [keys, environments] = await Promise.all([
    get("/ssh_keys", { query: { limit: 100 } }),
    get("/environments"),
  ]);
  const typeSelect = el(
    "select",
    { id: "key-type", name: "type" },
    el("option", { value: "rsa", text: "RSA 2048 (works everywhere)" }),
    el("option", { value: "rsa4096", text: "RSA 4096" }),
    el("option", { value: "ed25519", text: "Ed25519" }),
  );
  const generate = el("button", { type: "submit", text: "Generate a key" });
  const result = el("section", {
    class: "new-key",
    "aria-labelledby": "new-key-title",
    hidden: true,
    tabindex: "-1",
  });
  const genForm = el(
    "form",
    { "aria-labelledby": "generate-title" },
    el("h2", { id: "generate-title", text: "Generate a key" }),
    el(
      "p",
      {},
      "The server generates the key pair and keeps the private half in its key store; " +
        "your workflows use it to log in to the cluster as you.",
    ),
    el("div", { class: "field" }, el("label", { for: "key-type", text: "Key type" }), typeSelect),
    generate,
  );
  genForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    generate.disabled = true;
    try {
      const { data } = await call("POST", "/ssh_keys", { body: { type: typeSelect.value } });
      const line = data.public_key.trim();
      replace(
        result,
        el("h2", { id: "new-key-title", text: "Your new public key" }),
        el("p", { class: "notice", text: "Take note of it: it is shown only this once." }),
        el("p", {}, "Key ID: ", el("code", { id: "new-key-id", text: data.id })),
        ...copyable("new-public-key", "public key", line),
        el(
          "p",
          {},
          "Add this line to ",
          el("code", { text: "~/.ssh/authorized_keys" }),
          " on each cluster:",
        ),
        ...copyable("authorized-keys-line", "command", `echo '${line}' >> ~/.ssh/authorized_keys`),
      );
      result.hidden = false;
      result.focus();
      await refreshKeys();
    } catch (error) {
      replace(result, el("p", { class: "error", role: "alert", text: errorText(error) }));
      result.hidden = false;
    } finally {
      generate.disabled = false;
    }
  });

  const keyRows = el("tbody");
  let currentKeys = keys.ssh_keys;
  async function refreshKeys() {
    currentKeys = (await get("/ssh_keys", { query: { limit: 100 } })).ssh_keys;
    renderKeys();
    renderIdentities();
  }
  function renderKeys() {
    replace(
      keyRows,
      ...currentKeys.map((key) => {
        const remove = el("button", {
          type: "button",
          class: "danger small",
          text: "Delete",
          "aria-label": `Delete key ${key.id}`,
        });
        remove.addEventListener("click", async () => {
          const yes = await confirmDialog({
            title: "Delete this key?",
            message: `Key ${key.id} (${key.fingerprint}) is deleted, both halves. Workflows can no longer use it.`,
            confirmLabel: "Delete key",
          });
          if (!yes) return;
          try {
            await call("DELETE", `/ssh_keys/${seg(key.id)}`);
            announce("Key deleted");
          } catch (error) {
            announce(errorText(error));
          }
          await refreshKeys();
        });
        return el(
          "tr",
          { dataset: { key: key.id } },
          el("td", { dataset: { label: "Key ID" } }, el("code", { text: key.id })),
          el("td", { dataset: { label: "Type" }, text: key.key_type }),
          el(
            "td",
            { dataset: { label: "Fingerprint" } },
            el("code", { class: "wrap", text: key.fingerprint }),
          ),
          el("td", { dataset: { label: "Created" }, text: formatTime(key.created_at) }),
          el("td", { dataset: { label: "" } }, remove),
        );
      }),
    );
    if (!currentKeys.length) {
      keyRows.append(el("tr", {}, el("td", { colspan: "5", text: "You have no key yet." })));
    }
  }

  const identities = el("div");
  function renderIdentities() {
    const clusters = environments.environments.filter((env) => env.kind !== "local");
    if (!clusters.length) {
      replace(
        identities,
        el("p", {
          text: "Every environment here runs steps on the server's host: no cluster account is needed.",
        }),
      );
      return;
    }
    replace(
      identities,
      ...clusters.map((env) => {
        const loginId = `login-${env.id}`;
        const keyId = `key-${env.id}`;
        const login = el("input", {
          id: loginId,
          name: "login",
          autocomplete: "off",
          required: true,
          value: env.identity ? env.identity.login : "",
        });
        const key = el(
          "select",
          { id: keyId, name: "key_id", required: true },
          currentKeys.map((k) =>
            el("option", {
              value: k.id,
              text: `${k.key_type} ${k.id}`,
              selected: env.identity && env.identity.key_id === k.id,
            }),
          ),
        );
        const message = el("p", { role: "status", class: "muted" });
        const forget = el("button", {
          type: "button",
          class: "secondary",
          text: "Forget",
          hidden: !env.identity,
        });
        const form = el(
          "form",
          { class: "identity", "aria-label": `Cluster account on ${env.name}` },
          el("h3", { text: `${env.name} (${env.host || env.id})` }),
          el(
            "div",
            { class: "field" },
            el("label", { for: loginId, text: "Cluster login" }),
            login,
          ),
          el("div", { class: "field" }, el("label", { for: keyId, text: "SSH key" }), key),
          el("button", { type: "submit", text: "Save" }),
          forget,
          message,
        );
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          try {
            const { data } = await call("PUT", `/environments/${seg(env.id)}/identity`, {
              body: { login: login.value.trim(), key_id: key.value },
            });
            env.identity = data.identity;
            forget.hidden = false;
            message.textContent = "Saved.";
          } catch (error) {
            message.textContent = errorText(error);
          }
        });
        forget.addEventListener("click", async () => {
          try {
            await call("DELETE", `/environments/${seg(env.id)}/identity`);
            env.identity = null;
            forget.hidden = true;
            login.value = "";
            message.textContent = "Forgotten.";
          } catch (error) {
            message.textContent = errorText(error);
          }
        });
        return form;
      }),
    );
  }
  renderKeys();
  renderIdentities();

  return {
    title: "SSH keys",
    nodes: [
      el("h1", { text: "SSH keys" }),
      genForm,
      result,
      el(
        "section",
        { "aria-labelledby": "keys-title" },
        el("h2", { id: "keys-title", text: "Your keys" }),
        el(
          "div",
          { class: "table-wrap" },
          el(
            "table",
            {},
            el(
              "thead",
              {},
              el(
                "tr",
                {},
                ["Key ID", "Type", "Fingerprint", "Created", "Actions"].map((h) =>
                  el("th", { scope: "col", text: h }),
                ),
              ),
            ),
            keyRows,
          ),
        ),
      ),
      el(
        "section",
        { "aria-labelledby": "identities-title" },
        el("h2", { id: "identities-title", text: "Default cluster accounts" }),
        el("p", {
          text: "The login and key your workflows use on each cluster when you do not choose them in the workflow's form.",
        }),
        identities,
      ),
    ],
  };
}
