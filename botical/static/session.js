// One session on screen: its active path (answers as sanitized markdown, tool calls, versions
// to switch between, edit, regenerate and fork, what each answer cost), the queue of messages
// waiting, approval prompts, todo list and run status. Everything else is shown as text.

import { Conversation } from "./conversation.js";
import { renderMarkdown } from "./markdown.js";

const $ = (id) => document.getElementById(id);
const RENDER_DELAY_MS = 30; // streamed markdown is re-rendered at most this often per part
const ENDED = ["idle", "error"];
const TREE_EVENTS = ["message.created", "message.updated", "message.deleted", "path.changed"];

// An element with a class, data-* attributes and children (strings become Text nodes).
export function el(tag, className = "", data = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  Object.assign(node.dataset, data);
  node.append(...children);
  return node;
}

// A button that runs `onClick`; `busy` ones are disabled while a run is in progress.
function button(className, label, onClick, title = "", busy = false) {
  const node = el("button", className, busy ? { busy: "off" } : {}, label);
  node.type = "button";
  if (title) node.title = title;
  node.addEventListener("click", onClick);
  return node;
}

// "12 in (10 cached) · 30 out · cost 0.0004": an answer's or a session's usage.
export function usageText(usage) {
  if (!usage || !(usage.inputTokens || usage.outputTokens)) return "";
  const cached = usage.cachedTokens ? ` (${usage.cachedTokens} cached)` : "";
  const cost = usage.cost ? ` · cost ${Number(usage.cost.toPrecision(3))}` : "";
  return `${usage.inputTokens} in${cached} · ${usage.outputTokens} out${cost}`;
}

export class SessionView {
  // `answer(method, params, inSession = true)` runs a request (about this session, unless
  // `inSession` is false) and reports a failure (it resolves with the result, or null); `onStatus(running)` is told when a run starts or
  // ends; `onFork(session)` gets a session forked from this one.
  constructor(session, answer, onStatus, onFork) {
    this.id = session.id;
    this.session = session;
    this.answer = answer;
    this.onStatus = onStatus;
    this.onFork = onFork;
    this.running = false;
    this.conversation = new Conversation();
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
    this.conversation.load(state);
    this.layout();
    for (const approval of state.pendingApprovals) this.approvalRequired(approval);
    this.todos(state.todos);
    this.status(state.status.status === "running" ? "running" : "idle");
  }

  event(name, data) {
    if (TREE_EVENTS.includes(name)) {
      if (this.conversation.apply(name, data)) this.layout();
      return;
    }
    if (name.startsWith("part.")) this.conversation.apply(name, data);
    if (
      name === "part.created" &&
      this.conversation.queue.some((m) => m.id === data.part.messageId)
    )
      this.showQueue(); // a queued message's text
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
      this.controls();
    }
  }

  // Versions cannot change under a run (the server says CONFLICT): their buttons wait.
  controls() {
    for (const node of document.querySelectorAll('#transcript [data-busy="off"]'))
      node.disabled = this.running;
  }

  // The last user message, which Retry answers again; null when there is none.
  lastQuestion() {
    const asked = [...this.messages.values()].filter((node) => node.dataset.role === "user");
    return asked.at(-1) ?? null;
  }

  // Show the active path in order, and the queue: build the messages that came, drop the
  // ones that went, and redraw each header (versions, state, usage, actions).
  layout() {
    const path = this.conversation.path;
    const shown = new Set(path.map((message) => message.id));
    for (const id of [...this.messages.keys()]) if (!shown.has(id)) this.forget(id);
    const transcript = $("transcript");
    path.forEach((message, index) => {
      const node = this.messages.get(message.id) ?? this.build(message);
      this.head(node, message);
      if (transcript.children[index] !== node)
        transcript.insertBefore(node, transcript.children[index] ?? null);
    });
    this.showQueue();
    this.controls();
    transcript.lastElementChild?.scrollIntoView({ block: "end" });
  }

  build(message) {
    const node = el("article", "message", { id: message.id, role: message.role });
    node.append(el("header"), el("div", "parts"), el("p", "error"));
    this.messages.set(message.id, node);
    $("transcript").append(node);
    for (const part of message.parts ?? []) this.part(part);
    return node;
  }

  forget(messageId) {
    this.messages.get(messageId)?.remove();
    this.messages.delete(messageId);
    for (const [id, node] of this.parts) {
      if (node.dataset.messageId !== messageId) continue;
      this.parts.delete(id);
      this.texts.delete(id);
    }
    for (const key of this.calls.keys()) if (key.startsWith(messageId)) this.calls.delete(key);
  }

  head(node, message) {
    node.dataset.status = message.status;
    const user = message.role === "user";
    const role = el("span", "role", {}, user ? "You" : `Assistant (${message.model || "model"})`);
    const stopped = message.finishReason === "interrupted" ? "interrupted" : message.status;
    const state = el("span", "state", {}, !user && message.status !== "completed" ? stopped : "");
    const usage = el("span", "usage", {}, user ? "" : usageText(message.usage));
    const actions = el("span", "actions");
    if (user) actions.append(button("edit", "Edit", () => this.edit(node, message), "", true));
    else
      actions.append(button("regenerate", "Regenerate", () => this.regenerate(message), "", true));
    actions.append(button("fork", "Fork", () => this.fork(message), "A new session up to here"));
    node
      .querySelector("header")
      .replaceChildren(role, this.versions(message), state, usage, actions);
    node.querySelector(".error").textContent = message.error ? message.error.message : "";
  }

  // "< 2/3 >" when a message has several versions.
  versions(message) {
    const versions = message.versions;
    const holder = el("span", "versions");
    if (!versions || versions.count < 2) return holder;
    const go = (step) => () => {
      const messageId = this.conversation.otherVersion(message.id, step);
      if (messageId) this.answer("messages.select", { messageId });
    };
    const back = button("previous", "<", go(-1), "Previous version", true);
    const next = button("next", ">", go(1), "Next version", true);
    holder.append(back, el("span", "count", {}, `${versions.index}/${versions.count}`), next);
    back.hidden = versions.index === 1;
    next.hidden = versions.index === versions.count;
    return holder;
  }

  // Edit a question in place: a new version of it is sent, and answered.
  edit(node, message) {
    if (node.querySelector(".editor")) return;
    const text = message.parts
      .filter((p) => p.type === "text")
      .map((p) => p.text)
      .join("");
    const box = Object.assign(el("textarea", "", {}), { value: text, rows: 3 });
    const close = () => editor.remove();
    const save = button(
      "save",
      "Send edit",
      async () => {
        const content = box.value.trim();
        if (content && (await this.answer("messages.edit", { messageId: message.id, content })))
          close();
      },
      "",
      true,
    );
    const editor = el("div", "editor", {}, box, save, button("cancel", "Cancel", close));
    node.append(editor);
    save.disabled = this.running;
    box.focus();
  }

  regenerate(message) {
    this.answer("messages.retry", { messageId: message.id });
  }

  async fork(message) {
    const session = await this.answer("sessions.fork", { messageId: message.id });
    if (session) this.onFork(session);
  }

  // The messages waiting to run, each of which can be taken back.
  showQueue() {
    const item = (message) => {
      const text = message.parts
        .filter((p) => p.type === "text")
        .map((p) => p.text)
        .join("");
      const take = () => this.answer("messages.cancel", { messageId: message.id });
      const drop = button("unqueue", "\u00d7", take, "Take it back");
      return el("li", "", { id: message.id }, el("span", "text", {}, text), drop);
    };
    $("queue").replaceChildren(...this.conversation.queue.map(item));
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
      node.dataset.messageId = part.messageId;
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
      const answered = await this.answer(method, { approvalId: approval.id, ...params }, false);
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
