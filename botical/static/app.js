// The Botical web console: sign-in, projects, sessions and a live chat over the WebSocket.
// The project list follows the user:ID channel, the session list the project:ID channel.

import { api, explain, signIn, signOut } from "./api.js";
import { BoticalClient } from "./client.js";
import { SessionView, el, usageText } from "./session.js";

const $ = (id) => document.getElementById(id);
const SESSION_CONTROLS = ["session-title", "archive", "agent", "model", "message"];

// crypto.randomUUID() exists only in secure contexts; a console on http://LAN-IP is not one.
function randomKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

// Show a sentence (and the error's code as a detail), or hide the notice.
function notice(text, code = "") {
  $("notice-text").textContent = text || "";
  $("notice-code").textContent = code;
  $("notice").hidden = !text;
}

function failed(doing, error) {
  const { sentence, code } = explain(error);
  notice(`${doing}: ${sentence}`, code);
}

class Console {
  constructor(me) {
    this.me = me;
    this.client = new BoticalClient((state, reason) => this.connection(state, reason));
    this.projectId = null;
    this.view = null;
    this.draft = { text: null, key: null }; // a resend of the same text reuses its idempotency key
  }

  start() {
    $("who").textContent = `Signed in as ${this.me.user.name}`;
    $("sign-out").hidden = false;
    this.bind();
    this.client.connect();
    this.follow(
      `user:${this.me.user.id}`,
      () => this.loadProjects(),
      (name, data) => {
        this.userEvent(name, data);
      },
    );
  }

  bind() {
    const on = (id, type, handler) => $(id).addEventListener(type, handler);
    on("sign-out", "click", async () => {
      await signOut().catch(() => {});
      location.reload();
    });
    on("project-form", "submit", (event) => {
      event.preventDefault();
      this.createProject();
    });
    on("new-session", "click", () => this.newSession());
    on("composer", "submit", (event) => {
      event.preventDefault();
      this.send();
    });
    on("message", "keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        this.send();
      }
    });
    on("stop", "click", () => this.run("Could not stop the answer", "messages.cancel", {}));
    on("queue-send", "click", () => this.send("queue"));
    on("interrupt", "click", () => this.send("interrupt"));
    on("retry", "click", () => this.run("Could not retry", "messages.retry", {}));
    on("archive", "click", () => this.run("Could not archive", "sessions.archive", {}));
    on("session-title", "change", () => this.update({ title: $("session-title").value.trim() }));
    on("agent", "change", () => this.update({ agent: $("agent").value }));
    on("model", "change", () => this.update({ model: $("model").value.trim() || null }));
  }

  connection(state, reason) {
    $("connection").textContent = state;
    $("connection").dataset.state = state;
    $("connection").title = reason || "";
    if (state === "offline" && reason) notice(reason);
  }

  // Watch a channel whose state is a list: `reload()` reads it again after the subscription
  // (and whenever events were lost); `onEvent` applies what happens after.
  follow(channel, reload, onEvent) {
    this.client.watch(channel, {
      resync: async () => {
        // The channel's seq first, then the list: later events apply on top of it.
        const subscriptions = await this.client.request("subscriptions.list");
        const seq = subscriptions.items.find((s) => s.channel === channel).seq;
        await reload();
        return seq;
      },
      onEvent,
      onError: (error) => failed("Live updates stopped", error),
      onRevoked: () => notice("You no longer have access to this project."),
    });
  }

  // -- projects ------------------------------------------------------------------------------

  async loadProjects() {
    const page = await api("GET", "/api/projects?limit=200");
    $("projects").replaceChildren();
    for (const project of page.items) this.showProject(project);
    if (!page.items.length) {
      notice("No projects yet: create one under New project.");
      $("new-project").open = true;
    } else if (!page.items.some((project) => project.id === this.projectId)) {
      this.openProject(page.items[0].id); // a first start: the project serve made
    }
  }

  userEvent(name, data) {
    if (name === "project.created") this.showProject(data.project);
    else if (name === "member.added" && data.member.userId === this.me.user.id) {
      api("GET", `/api/projects/${data.member.projectId}`).then(
        (project) => this.showProject(project),
        () => {},
      );
    } else if (name === "member.removed" && data.userId === this.me.user.id) {
      this.dropProject(data.projectId);
    } else if (name === "project.deleted") this.dropProject(data.projectId);
  }

  showProject(project) {
    const existing = this.item("projects", project.id);
    if (existing) existing.firstChild.textContent = project.name;
    else
      $("projects").append(
        this.pickerItem(project.id, project.name, () => this.openProject(project.id)),
      );
    this.select("projects", this.projectId);
  }

  dropProject(projectId) {
    this.item("projects", projectId)?.remove();
    if (this.projectId !== projectId) return;
    this.client.unwatch(`project:${projectId}`);
    this.projectId = null;
    this.closeSession();
    $("sessions").replaceChildren();
    $("new-session").disabled = true;
  }

  async createProject() {
    const name = $("project-name").value.trim();
    const path = $("project-path").value.trim();
    try {
      const project = await api("POST", "/api/projects", path ? { name, path } : { name });
      $("project-form").reset();
      $("new-project").open = false;
      notice("");
      this.showProject(project);
      this.openProject(project.id);
    } catch (error) {
      failed("Could not create the project", error);
    }
  }

  openProject(projectId) {
    if (this.projectId === projectId) return;
    if (this.projectId) this.client.unwatch(`project:${this.projectId}`);
    this.projectId = projectId;
    this.select("projects", projectId);
    this.closeSession();
    $("new-session").disabled = false;
    $("sessions").replaceChildren();
    this.follow(
      `project:${projectId}`,
      () => this.loadSessions(projectId),
      (name, data) => {
        if (name.startsWith("session.")) this.showSession(data.session);
      },
    );
    this.loadAgents(projectId);
  }

  async loadSessions(projectId) {
    const params = { projectId, status: "active", limit: 200 };
    const page = await this.client.request("sessions.list", params);
    if (this.projectId !== projectId) return; // another project was opened meanwhile
    $("sessions").replaceChildren();
    for (const session of page.items.reverse()) this.showSession(session);
  }

  async loadAgents(projectId) {
    const agents = await this.client.request("agents.list", { projectId }).catch(() => null);
    if (!agents || this.projectId !== projectId) return;
    const option = (agent) =>
      Object.assign(el("option", "", {}, agent.name), {
        value: agent.name,
        title: agent.description,
      });
    $("agent").replaceChildren(...agents.items.map(option));
    const models = new Set(["echo", ...agents.items.map((agent) => agent.model).filter(Boolean)]);
    $("models").replaceChildren(
      ...[...models].map((model) => Object.assign(el("option"), { value: model })),
    );
    if (this.view) $("agent").value = this.view.session.agent;
  }

  // -- sessions ------------------------------------------------------------------------------

  // Add a session to the top of the list, update it in place, or drop it once archived.
  showSession(session) {
    if (session.projectId !== this.projectId || session.parentId) return;
    const label = session.title || "New session";
    const existing = this.item("sessions", session.id);
    if (session.status === "archived") {
      existing?.remove();
      if (this.view?.id === session.id) this.closeSession();
      return;
    }
    if (existing) existing.firstChild.textContent = label;
    else $("sessions").prepend(this.pickerItem(session.id, label, () => this.openSession(session)));
    if (this.view?.id === session.id) this.showHead(session);
    this.select("sessions", this.view?.id);
  }

  openSession(session) {
    if (this.view?.id === session.id) return;
    if (this.view) this.client.unwatch(`session:${this.view.id}`);
    const answer = (method, params, inSession = true) =>
      this.run("Could not do that", method, params, inSession);
    const forked = (copy) => {
      this.showSession(copy);
      this.openSession(copy);
    };
    const view = new SessionView(session, answer, (running) => this.running(running), forked);
    this.view = view;
    this.select("sessions", session.id);
    for (const id of ["transcript", "approvals", "todos", "queue"]) $(id).replaceChildren();
    for (const id of SESSION_CONTROLS) $(id).disabled = false;
    this.showHead(session);
    this.running(false);
    this.client.watch(`session:${session.id}`, {
      resync: async () => {
        const state = await this.client.request("sessions.sync", { sessionId: session.id });
        if (this.view === view) {
          view.load(state); // not if another session was opened meanwhile
          this.showHead(state.session);
          this.running(view.running);
        }
        return state.seq;
      },
      onEvent: (name, data) => {
        view.event(name, data);
        if (name === "session.updated" && this.view === view) this.showHead(data.session);
        if (name === "message.created" || name === "message.updated") this.running(view.running);
      },
      onError: (error) => failed("Live updates of this session stopped", error),
      onRevoked: () => notice("You no longer have access to this session."),
    });
  }

  closeSession() {
    if (this.view) this.client.unwatch(`session:${this.view.id}`);
    this.view = null;
    for (const id of ["transcript", "approvals", "todos"]) $(id).replaceChildren();
    for (const id of [...SESSION_CONTROLS, "send", "retry"]) $(id).disabled = true;
    $("session-title").value = "";
    $("session-title").placeholder = "No session selected";
    $("agent-status").textContent = "";
    $("session-usage").textContent = "";
    $("queue").replaceChildren();
    this.select("sessions", null);
  }

  showHead(session) {
    $("session-title").placeholder = "New session (type a title to rename it)";
    if (document.activeElement !== $("session-title")) $("session-title").value = session.title;
    $("agent").value = session.agent;
    if (document.activeElement !== $("model")) $("model").value = session.model || "";
    $("session-usage").textContent = usageText(session.usage);
  }

  // During a run the composer offers Queue, Interrupt and Stop instead of Send; Retry answers
  // the last question again.
  running(running) {
    $("send").hidden = running;
    for (const id of ["stop", "queue-send", "interrupt"]) $(id).hidden = !running;
    $("send").disabled = running || !this.view;
    $("retry").disabled = running || !this.view?.lastQuestion();
  }

  async newSession() {
    const params = { projectId: this.projectId };
    const session = await this.run("Could not create a session", "sessions.create", params, false);
    if (!session) return;
    this.showSession(session);
    this.openSession(session);
    $("message").focus();
  }

  update(changes) {
    return this.run("Could not change the session", "sessions.update", changes);
  }

  // Send the message; during an answer, `ifBusy` says what to do ("queue" by default).
  async send(ifBusy = null) {
    const content = $("message").value.trim();
    if (!content || !this.view) return;
    if (this.draft.text !== content) this.draft = { text: content, key: randomKey() };
    const params = { content, idempotencyKey: this.draft.key };
    if (ifBusy || this.view.running) params.ifBusy = ifBusy || "queue";
    if (await this.run("Could not send the message", "messages.send", params)) {
      $("message").value = "";
      this.draft = { text: null, key: null };
    }
  }

  // A request about the open session (its id added unless `inSession` is false) whose failure
  // is shown as a sentence; resolves with the result, or null.
  async run(doing, method, params, inSession = true) {
    const full = inSession && this.view ? { sessionId: this.view.id, ...params } : params;
    try {
      const result = await this.client.request(method, full);
      notice("");
      return result;
    } catch (error) {
      failed(doing, error);
      return null;
    }
  }

  // -- lists ---------------------------------------------------------------------------------

  pickerItem(id, label, open) {
    const button = el("button", "", { id }, label);
    button.type = "button";
    button.addEventListener("click", open);
    return el("li", "", { id }, button);
  }

  item(listId, id) {
    return [...$(listId).children].find((item) => item.dataset.id === id);
  }

  select(listId, id) {
    for (const item of $(listId).children)
      item.classList.toggle("selected", item.dataset.id === id);
  }
}

async function main() {
  let me;
  try {
    me = await signIn();
  } catch (error) {
    const { sentence, code } = explain(error);
    if (code === "UNAUTHORIZED")
      notice("Open the URL that botical serve printed to sign in.", code);
    else notice(`Sign-in failed: ${sentence}`, code);
    return;
  }
  new Console(me).start();
}

main();
