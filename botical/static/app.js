// The Botical web console: sign-in, projects, sessions and a live chat over the WebSocket.
// Server data only ever reaches the page as text (textContent, Text nodes), never as HTML.

import { BoticalClient, ConnectionLost } from "./client.js";

const TOKEN_KEY = "botical.token";
const $ = (id) => document.getElementById(id);

// An element with a class, data-* attributes and children (strings become Text nodes).
function el(tag, className = "", data = {}, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  Object.assign(node.dataset, data);
  node.append(...children);
  return node;
}

// crypto.randomUUID() exists only in secure contexts; a console on http://LAN-IP is not one.
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

function notice(text) {
  $("notice").textContent = text || "";
  $("notice").hidden = !text;
}

function explain(error) {
  if (error instanceof ConnectionLost) return error.message;
  return error.code ? `${error.code}: ${error.message}` : String(error.message || error);
}

// The URL that `botical serve` prints carries ?token=: keep it in sessionStorage only.
function takeToken() {
  const params = new URLSearchParams(location.search);
  if (params.has("token")) {
    sessionStorage.setItem(TOKEN_KEY, params.get("token"));
    params.delete("token");
    const query = params.toString();
    history.replaceState(null, "", location.pathname + (query ? `?${query}` : "") + location.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

async function api(path, token) {
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  const body = await response.json();
  if (!response.ok) throw Object.assign(new Error(body.error.message), body.error);
  return body;
}

// One session's transcript, approvals, todo list and agent status.
class SessionView {
  constructor(client, session) {
    this.client = client;
    this.id = session.id;
    this.parts = new Map(); // part id -> element
    this.messages = new Map(); // message id -> element
    this.calls = new Map(); // messageId + toolCallId -> tool call element
    this.approvals = new Map(); // approval id -> element
    this.showTitle(session);
  }

  // Replace everything with a sessions.sync result.
  load(state) {
    for (const map of [this.parts, this.messages, this.calls, this.approvals]) map.clear();
    $("transcript").replaceChildren();
    $("approvals").replaceChildren();
    this.showTitle(state.session);
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
    else if (name === "session.updated") this.showTitle(data.session);
  }

  showTitle(session) {
    $("session-title").textContent = session.title || "Untitled session";
  }

  status(status) {
    $("agent-status").textContent = status;
    $("agent-status").dataset.status = status;
    $("stop").disabled = status === "idle" || status === "error";
  }

  message(message) {
    let node = this.messages.get(message.id);
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
    const holder = this.messages.get(part.messageId)?.querySelector(".parts");
    if (!holder) return;
    if (part.type === "text" || part.type === "reasoning") {
      const make = () => el("div", `part ${part.type}`);
      this.partNode(part, holder, make).textContent = part.text ?? "";
    } else if (part.type === "tool_call") {
      this.toolCall(part, holder);
    } else if (part.type === "tool_result") {
      this.toolResult(part, holder);
    } else if (part.type === "step_finish" && part.error) {
      const make = () => el("p", "part error");
      this.partNode(part, holder, make).textContent = part.error.message;
    }
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
    if (node) node.append(delta); // a Text node: no re-render of what came before
    this.messages.get(part.messageId)?.scrollIntoView({ block: "end" });
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
    const approve = el("button", "approve", {}, "Approve");
    const reject = el("button", "reject", {}, "Reject");
    const question = el("p", "", {}, "Run ", el("strong", "", {}, approval.tool), " with ");
    question.append(el("code", "", {}, JSON.stringify(approval.arguments)), "?");
    const node = el("div", "approval", { approvalId: approval.id }, question, approve, reject);
    const answer = (method) => async () => {
      approve.disabled = reject.disabled = true;
      try {
        await this.client.request(method, { approvalId: approval.id });
      } catch (error) {
        approve.disabled = reject.disabled = false;
        notice(`Could not answer: ${explain(error)}`);
      }
    };
    approve.addEventListener("click", answer("tools.approve"));
    reject.addEventListener("click", answer("tools.reject"));
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

// The page: who is signed in, the connection, the project and session pickers, the composer.
class Console {
  constructor(token) {
    this.token = token;
    this.client = new BoticalClient(token, (state, reason) => this.connection(state, reason));
    this.projectId = null;
    this.view = null;
    this.draft = { text: null, key: null }; // a resend of the same text reuses its idempotency key
  }

  async start() {
    const me = await api("/api/me", this.token);
    $("who").textContent = `Signed in as ${me.user.name}`;
    this.client.connect();
    const projects = await api("/api/projects?limit=200", this.token);
    const item = (project) =>
      this.pickerItem(project.id, project.name, () => this.openProject(project.id));
    $("projects").replaceChildren(...projects.items.map(item));
    if (!projects.items.length) notice("No projects yet: create one with botical project create.");
    $("new-session").addEventListener("click", () => this.newSession());
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    $("message").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.send();
      }
    });
    $("stop").addEventListener("click", () => {
      this.run("messages.cancel", { sessionId: this.view.id });
    });
  }

  connection(state, reason) {
    $("connection").textContent = state;
    $("connection").dataset.state = state;
    $("connection").title = reason || "";
    if (state === "offline" && reason) notice(reason);
  }

  pickerItem(id, label, open) {
    const button = el("button", "", { id }, label);
    button.type = "button";
    button.addEventListener("click", open);
    return el("li", "", { id }, button);
  }

  select(listId, id) {
    for (const item of $(listId).children) {
      item.classList.toggle("selected", item.dataset.id === id);
    }
  }

  openProject(projectId) {
    if (this.projectId === projectId) return;
    if (this.projectId) this.client.unwatch(`project:${this.projectId}`);
    this.projectId = projectId;
    this.select("projects", projectId);
    $("new-session").disabled = false;
    $("sessions").replaceChildren();
    const channel = `project:${projectId}`;
    this.client.watch(channel, {
      resync: async () => {
        // The channel's seq first, then the list: later events apply on top of it.
        const subscriptions = await this.client.request("subscriptions.list");
        const seq = subscriptions.items.find((s) => s.channel === channel).seq;
        const params = { projectId, status: "active", limit: 200 };
        const page = await this.client.request("sessions.list", params);
        if (this.projectId !== projectId) return seq; // another project was opened meanwhile
        $("sessions").replaceChildren();
        for (const session of page.items.reverse()) this.showSession(session);
        return seq;
      },
      onEvent: (name, data) => name.startsWith("session.") && this.showSession(data.session),
      onError: (error) => notice(`Project: ${explain(error)}`),
      onRevoked: () => notice("You no longer have access to this project."),
    });
  }

  // Add a session to the top of the list, or update its title in place.
  showSession(session) {
    if (session.projectId !== this.projectId || session.parentId) return;
    const created = new Date(session.createdAt).toLocaleTimeString();
    const label = `${session.title || "Untitled session"} · ${created}`;
    const existing = [...$("sessions").children].find((item) => item.dataset.id === session.id);
    if (session.status === "archived") existing?.remove();
    else if (existing) existing.firstChild.textContent = label;
    else $("sessions").prepend(this.pickerItem(session.id, label, () => this.openSession(session)));
    if (this.view?.id === session.id) this.select("sessions", session.id);
  }

  openSession(session) {
    if (this.view?.id === session.id) return;
    if (this.view) this.client.unwatch(`session:${this.view.id}`);
    const view = new SessionView(this.client, session);
    this.view = view;
    this.select("sessions", session.id);
    $("transcript").replaceChildren();
    $("approvals").replaceChildren();
    $("todos").replaceChildren();
    $("message").disabled = $("send").disabled = false;
    this.client.watch(`session:${session.id}`, {
      resync: async () => {
        const state = await this.client.request("sessions.sync", { sessionId: session.id });
        if (this.view === view) view.load(state); // not if another session was opened meanwhile
        return state.seq;
      },
      onEvent: (name, data) => view.event(name, data),
      onError: (error) => notice(`Session: ${explain(error)}`),
      onRevoked: () => notice("You no longer have access to this session."),
    });
  }

  async newSession() {
    const params = { projectId: this.projectId, title: "New session" };
    const session = await this.run("sessions.create", params);
    if (!session) return;
    this.showSession(session);
    this.openSession(session);
  }

  async send() {
    const content = $("message").value.trim();
    if (!content || !this.view) return;
    if (this.draft.text !== content) this.draft = { text: content, key: randomKey() };
    const params = { sessionId: this.view.id, content, idempotencyKey: this.draft.key };
    if (await this.run("messages.send", params)) {
      $("message").value = "";
      this.draft = { text: null, key: null };
    }
  }

  // A request whose failure is shown to the user; resolves with the result or null.
  async run(method, params) {
    try {
      const result = await this.client.request(method, params);
      notice("");
      return result;
    } catch (error) {
      notice(`${method} failed: ${explain(error)}`);
      return null;
    }
  }
}

async function main() {
  const token = takeToken();
  if (!token) {
    notice("Open the URL that botical serve printed to sign in.");
    return;
  }
  try {
    await new Console(token).start();
  } catch (error) {
    if (error.code === "UNAUTHORIZED") sessionStorage.removeItem(TOKEN_KEY);
    notice(`Sign-in failed: ${explain(error)}`);
  }
}

main();
