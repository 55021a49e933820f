// The review queue: accept, reject or correct one answer; a tool call is corrected in a form
// made from the tool's JSON schema, text (or JSON for a response schema) in an editor.
"use strict";
(() => {
  const item = JSON.parse(document.getElementById("review-item").textContent);
  const form = document.getElementById("correction");
  const editor = document.getElementById("editor");
  const problem = document.getElementById("problem");
  const mode = document.getElementById("mode");
  const toolsByName = Object.fromEntries(item.tools.map((t) => [(t.function || t).name, t.function || t]));
  let current = null; // "call" or "text"

  async function send(body) {
    try {
      await loragate.post(`/ui/review/${encodeURIComponent(item.id)}`, body);
      loragate.toast("saved");
      window.location.assign(item.next);
    } catch (error) {
      problem.textContent = error.message;
      loragate.toast(error.message, true);
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value; else node.setAttribute(key, value === true ? "" : value);
    }
    node.append(...children);
    return node;
  }

  function typeOf(schema) {
    let type = schema.type;
    if (Array.isArray(type)) type = type.find((t) => t !== "null") || "string";
    if (!type && schema.enum) type = "string";
    return type || "json";
  }

  function fieldFor(name, schema, required, value) {
    const type = typeOf(schema);
    const id = `arg-${name}`;
    let input;
    if (schema.enum) {
      input = el("select", { id, name }, el("option", { value: "", text: "—" }),
        ...schema.enum.map((v) => el("option", { value: JSON.stringify(v), text: String(v), selected: value === v })));
    } else if (type === "boolean") {
      input = el("select", { id, name }, el("option", { value: "", text: "—" }),
        el("option", { value: "true", text: "true", selected: value === true }),
        el("option", { value: "false", text: "false", selected: value === false }));
    } else if (type === "integer" || type === "number") {
      input = el("input", { id, name, type: "number", step: type === "integer" ? "1" : "any",
        value: value === undefined ? "" : String(value) });
    } else if (type === "string") {
      input = el("textarea", { id, name, rows: 2 });
      input.style.minHeight = "0";
      input.value = value === undefined ? "" : String(value);
    } else {
      input = el("textarea", { id, name, rows: 3, placeholder: "JSON" });
      input.style.minHeight = "0";
      input.value = value === undefined ? "" : JSON.stringify(value, null, 2);
    }
    input.dataset.type = schema.enum ? "enum" : type;
    input.dataset.required = required ? "yes" : "no";
    const label = el("label", { for: id }, name, required ? el("span", { class: "req", text: " *" }) : "",
      el("span", { class: "hint", text: `  ${schema.enum ? "one of the listed" : type}` }));
    const hint = schema.description ? el("span", { class: "hint", text: schema.description }) : "";
    return el("div", { class: "field" }, label, input, hint);
  }

  function callForm(name) {
    editor.replaceChildren();
    const names = Object.keys(toolsByName);
    const picked = name && toolsByName[name] ? name : names[0];
    const select = el("select", { id: "tool", name: "tool" },
      ...names.map((n) => el("option", { value: n, text: n, selected: n === picked })));
    select.addEventListener("change", () => callForm(select.value));
    editor.append(el("div", { class: "field" }, el("label", { for: "tool", text: "tool" }), select));
    const tool = toolsByName[picked];
    const schema = tool.parameters || {};
    const required = new Set(schema.required || []);
    const given = (item.calls.find((c) => c.name === picked) || {}).arguments;
    let args = {};
    try { args = typeof given === "string" ? JSON.parse(given) : (given || {}); } catch (_) { args = {}; }
    for (const [prop, propSchema] of Object.entries(schema.properties || {})) {
      editor.append(fieldFor(prop, propSchema, required.has(prop), args[prop]));
    }
  }

  function textForm() {
    editor.replaceChildren();
    const area = el("textarea", { id: "answer", name: "answer",
      placeholder: item.json_schema ? "the JSON the answer should have been" : "the answer it should have been" });
    area.value = item.text || "";
    editor.append(area);
  }

  function setMode(which) {
    current = which;
    for (const button of mode.querySelectorAll("button")) button.setAttribute("aria-pressed", String(button.dataset.mode === which));
    problem.textContent = "";
    if (which === "call") callForm(item.calls.length ? item.calls[0].name : null); else textForm();
  }

  function readCall() {
    const name = document.getElementById("tool").value;
    const args = {};
    for (const input of editor.querySelectorAll("[data-type]")) {
      const raw = input.value.trim();
      if (raw === "") {
        if (input.dataset.required === "yes") throw new Error(`${input.name} is required`);
        continue;
      }
      const type = input.dataset.type;
      if (type === "integer" || type === "number") {
        const number = Number(raw);
        if (!Number.isFinite(number) || (type === "integer" && !Number.isInteger(number))) {
          throw new Error(`${input.name} must be ${type === "integer" ? "an integer" : "a number"}`);
        }
        args[input.name] = number;
      } else if (type === "boolean" || type === "enum" || type === "json" || type === "object" || type === "array") {
        try { args[input.name] = JSON.parse(raw); } catch (_) { throw new Error(`${input.name} is not valid JSON`); }
      } else {
        args[input.name] = input.value;
      }
    }
    return { role: "assistant", content: null, tool_calls: [{ type: "function", function: { name, arguments: args } }] };
  }

  function readText() {
    const text = document.getElementById("answer").value;
    if (!text.trim()) throw new Error("the correction is empty");
    if (item.json_schema) {
      try { JSON.parse(text); } catch (error) { throw new Error(`not valid JSON: ${error.message}`); }
    }
    return text;
  }

  function openCorrection() {
    form.hidden = false;
    mode.replaceChildren();
    if (Object.keys(toolsByName).length) {
      mode.append(
        el("button", { type: "button", "data-mode": "call", text: "a tool call" }),
        el("button", { type: "button", "data-mode": "text", text: item.json_schema ? "JSON" : "text" }));
      mode.querySelectorAll("button").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
      setMode(item.calls.length || !item.text ? "call" : "text");
    } else {
      setMode("text");
    }
    const first = editor.querySelector("select, input, textarea");
    if (first) first.focus();
  }

  function save() {
    problem.textContent = "";
    let correction;
    try { correction = current === "call" ? readCall() : readText(); } catch (error) {
      problem.textContent = error.message;
      return;
    }
    send({ verdict: "correct", correction });
  }

  document.querySelectorAll("[data-verdict]").forEach((b) =>
    b.addEventListener("click", () => send({ verdict: b.dataset.verdict })));
  document.getElementById("correct").addEventListener("click", openCorrection);
  form.addEventListener("submit", (event) => { event.preventDefault(); save(); });
  editor.addEventListener("input", () => { problem.textContent = ""; });

  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select");
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !form.hidden) {
      event.preventDefault();
      save();
      return;
    }
    if (typing) {
      if (event.key === "Escape") event.target.blur();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const keys = { a: () => send({ verdict: "accept" }), r: () => send({ verdict: "reject" }),
      c: openCorrection, s: () => window.location.assign(item.next) };
    if (keys[event.key]) { event.preventDefault(); keys[event.key](); }
  });
})();
