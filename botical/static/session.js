// One session on screen: its transcript (answers as sanitized markdown), tool calls, approval
// prompts, todo list and run status. Everything else from the server is shown as text.

import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const RENDER_DELAY_MS = 30; // streamed markdown is re-rendered at most this often per part
const ENDED = ["idle", "error"];

// An element with a class, data-* attributes and children (strings become Text nodes).
export function el(tag, className = "", data = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  Object.assign(node.dataset, data);
  node.append(...children);
  return node;
}

export class SessionView {
  // `answer(method, params)` runs a request and reports a failure; `onStatus(running)` is
  // told when a run starts or ends.
  constructor(session, answer, onStatus) {
    this.id = session.id;
    this.session = session;
    this.answer = answer;
    this.onStatus = onStatus;
    this.running = false;
    this.parts = new Map(); // part id -> element
    this.texts = new Map(); // markdown part id -> its text so far
    this.pending = new Set(); // markdown part ids waiting to be rendered again
    this.messages = new Map(); // message id -> element
    this.calls = new Map(); // messageId + toolCallId -> tool call element
    this.approvals = new Map(); // approval id -> element
  }

  // Replace everything with a sessions.sync result.
  load(state) {
    for (const map of [this.parts, this.texts, this.messages, this.calls, this.approvals])
      map.clear();
    $("transcript").replaceChildren();
    $("approvals").replaceChildren();
    this.session = state.session;
    for (const message of state.messages) {
      this.message(message);
      for (const part of message.parts) this.part(part);
    }
    for (const approval of state.pendingApprovals) this.approvalRequired(approval);
    this.todos(state.todos);
    this.status(state.status.status === "running" ? "running" : "idle");
  }

  event(name, data) {
    if (name === "message.created" || name === "message.updated") this.message(data.message);
    else if (name === "part.created") this.part(data.part);
    else if (name === "part.updated" && "delta" in data) this.delta(data.part, data.delta);
    else if (name === "part.updated") this.part(data.part);
    else if (name === "tool.approval_required") this.approvalRequired(data.approval);
    else if (name === "tool.approval_resolved") this.approvalResolved(data.approval);
    else if (name === "todo.updated") this.todos(data.todos);
    else if (name === "agent.status_changed") this.status(data.status);
    else if (name === "session.updated") this.session = data.session;
  }

  status(status) {
    $("agent-status").textContent = status;
    $("agent-status").dataset.status = status;
    const running = !ENDED.includes(status);
    if (running !== this.running) {
      this.running = running;
      this.onStatus(running);
    }
  }

  // The last user message, which Retry answers again; null when there is none.
  lastQuestion() {
    const asked = [...this.messages.values()].filter((node) => node.dataset.role === "user");
    return asked.at(-1) ?? null;
  }

  message(message) {
    let node = this.messages.get(message.id);
    if (message.status === "superseded") {
      node?.remove(); // a retry replaced this answer
      this.messages.delete(message.id);
      return;
    }
    if (!node) {
      const role = message.role === "user" ? "You" : `Assistant (${message.model || "model"})`;
      node = el("article", "message", { id: message.id, role: message.role });
      node.append(el("header", "", {}, el("span", "role", {}, role), el("span", "state")));
      node.append(el("div", "parts"), el("p", "error"));
      this.messages.set(message.id, node);
      $("transcript").append(node);
    }
    node.dataset.status = message.status;
    const shown = message.role === "assistant" && message.status !== "completed";
    node.querySelector(".state").textContent = shown ? message.status : "";
    node.querySelector(".error").textContent = message.error ? message.error.message : "";
    node.scrollIntoView({ block: "end" });
  }

  part(part) {
    const message = this.messages.get(part.messageId);
    const holder = message?.querySelector(".parts");
    if (!holder) return;
    if (part.type === "text" && message.dataset.role === "assistant") {
      this.partNode(part, holder, () => el("div", "part text markdown"));
      this.texts.set(part.id, part.text ?? "");
      this.render(part.id);
    } else if (part.type === "text" || part.type === "reasoning") {
      const make = () => el("div", `part ${part.type}`);
      this.partNode(part, holder, make).textContent = part.text ?? "";
    } else if (part.type === "tool_call") {
      this.toolCall(part, holder);
    } else if (part.type === "tool_result") {
      this.toolResult(part, holder);
    } // a step_finish's error is the message's error, shown once by message()
  }

  partNode(part, holder, make) {
    let node = this.parts.get(part.id);
    if (!node) {
      node = make();
      node.dataset.partId = part.id;
      this.parts.set(part.id, node);
      holder.append(node);
    }
    if (part.status) node.dataset.status = part.status;
    return node;
  }

  delta(part, delta) {
    const node = this.parts.get(part.id);
    if (!node) return;
    if (this.texts.has(part.id)) {
      this.texts.set(part.id, this.texts.get(part.id) + delta);
      this.schedule(part.id);
    } else {
      node.append(delta); // a Text node: no re-render of what came before
    }
    this.messages.get(part.messageId)?.scrollIntoView({ block: "end" });
  }

  schedule(partId) {
    if (this.pending.has(partId)) return;
    this.pending.add(partId);
    setTimeout(() => {
      this.pending.delete(partId);
      this.render(partId);
    }, RENDER_DELAY_MS);
  }

  render(partId) {
    const node = this.parts.get(partId);
    if (node) node.replaceChildren(renderMarkdown(this.texts.get(partId) ?? ""));
  }

  toolCall(part, holder) {
    const node = this.partNode(part, holder, () => {
      const call = el("div", "part tool-call", { tool: part.tool });
      const args = JSON.stringify(part.arguments);
      call.append(el("span", "tool-name", {}, part.tool), el("code", "arguments", {}, args));
      call.append(el("span", "tool-status"), el("pre", "tool-result"));
      return call;
    });
    node.querySelector(".tool-status").textContent = part.status;
    this.calls.set(part.messageId + part.toolCallId, node);
  }

  toolResult(part, holder) {
    const call = this.calls.get(part.messageId + part.toolCallId);
    const node =
      call?.querySelector(".tool-result") ||
      this.partNode(part, holder, () => el("pre", "part tool-result"));
    node.textContent = part.output;
    node.classList.toggle("failed", part.isError);
  }

  approvalRequired(approval) {
    if (this.approvals.has(approval.id)) return;
    const once = el("button", "approve", {}, "Approve once");
    const always = el("button", "approve-session", {}, "Approve for this session");
    const reject = el("button", "reject", {}, "Reject");
    const question = el("p", "", {}, "Run ", el("strong", "", {}, approval.tool), " with ");
    question.append(el("code", "", {}, JSON.stringify(approval.arguments)), "?");
    const buttons = [once, always, reject];
    const node = el("div", "approval", { approvalId: approval.id }, question, ...buttons);
    const decide = (method, params) => async () => {
      for (const button of buttons) button.disabled = true;
      const answered = await this.answer(method, { approvalId: approval.id, ...params });
      if (!answered) for (const button of buttons) button.disabled = false;
    };
    once.addEventListener("click", decide("tools.approve", { scope: "once" }));
    always.addEventListener("click", decide("tools.approve", { scope: "session" }));
    reject.addEventListener("click", decide("tools.reject", {}));
    this.approvals.set(approval.id, node);
    $("approvals").append(node);
  }

  approvalResolved(approval) {
    this.approvals.get(approval.id)?.remove();
    this.approvals.delete(approval.id);
  }

  todos(todos) {
    const label = (todo) =>
      todo.status === "in_progress" && todo.activeForm ? todo.activeForm : todo.content;
    const item = (todo) => el("li", "", { status: todo.status }, label(todo));
    $("todos").replaceChildren(...todos.map(item));
  }
}
