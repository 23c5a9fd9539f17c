// What one session shows, kept from its events by the rules of protocol.md §7.4 (the same as
// the Python client's Conversation): the active path, each message with its parts and
// versions, and the queue of messages waiting to run.

export class Conversation {
  constructor() {
    this.path = [];
    this.queue = [];
  }

  // Replace everything with a sessions.sync result.
  load(state) {
    this.path = structuredClone(state.messages);
    this.queue = structuredClone(state.queue ?? []);
  }

  // Apply one event of the session's channel; true when the path or the queue changed shape
  // (a message came, went or moved), false for anything else.
  apply(name, data) {
    if (name === "message.created" || name === "message.updated") {
      this.message(data.message, name === "message.created");
    } else if (name === "message.deleted") {
      this.queue = this.queue.filter((m) => m.id !== data.messageId);
      const at = this.path.findIndex((m) => m.id === data.messageId);
      if (at >= 0) this.path.splice(at);
    } else if (name === "path.changed") {
      this.cutAfter(data.after);
      this.path.push(...structuredClone(data.messages));
    } else if (name === "part.created") {
      this.find(data.part.messageId)?.parts.push({ ...data.part });
      return false;
    } else if (name === "part.updated") {
      this.part(data);
      return false;
    } else {
      return false;
    }
    return true;
  }

  find(messageId) {
    return [...this.path, ...this.queue].find((m) => m.id === messageId) ?? null;
  }

  // The id of the version `step` places away (-1 previous, 1 next), or null at either end.
  otherVersion(messageId, step) {
    const versions = this.find(messageId)?.versions;
    if (!versions) return null;
    return versions.ids[versions.index - 1 + step] ?? null;
  }

  message(message, created) {
    if (message.status === "queued") {
      const waiting = this.queue.find((m) => m.id === message.id);
      if (waiting) Object.assign(waiting, message);
      else this.queue.push({ ...message, parts: [] });
      return;
    }
    const waiting = this.queue.find((m) => m.id === message.id);
    this.queue = this.queue.filter((m) => m.id !== message.id);
    const shown = this.path.find((m) => m.id === message.id);
    if (shown && !created) {
      Object.assign(shown, message); // in place; its parts stay
      return;
    }
    const parts = (waiting ?? shown)?.parts ?? [];
    this.cutAfter(message.parentId);
    this.path.push({ ...message, parts });
  }

  cutAfter(messageId) {
    const at = this.path.findIndex((m) => m.id === messageId);
    this.path.splice(at + 1); // at -1 (none, or null): everything goes
  }

  part(data) {
    const parts = this.find(data.part.messageId)?.parts ?? [];
    const at = parts.findIndex((p) => p.id === data.part.id);
    if (at < 0) return;
    if ("delta" in data) parts[at].text = (parts[at].text ?? "") + data.delta;
    else parts[at] = { ...data.part };
  }
}
