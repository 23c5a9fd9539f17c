"""How `botical chat` prints a session: streamed text, tool calls, todos, how answers end and
what they cost, the conversation with its versions and queue, on stdout; notices about the
chat itself on stderr."""

from __future__ import annotations

import json
from typing import Any, TextIO

from botical.client import ClientError, ValidationFailed

SUMMARY_LIMIT = 200
TODO_MARKS = {"completed": "[x]", "in_progress": "[>]", "pending": "[ ]"}
QUIET_TOOL_STATUSES = ("pending", "waiting_approval")  # the call line and the prompt say it


def explain(exc: ClientError) -> str:
    """One line for an error: its code and message, and each field of a VALIDATION_ERROR."""
    text = f"{exc.code}: {exc.message}"
    if isinstance(exc, ValidationFailed) and isinstance(exc.details, dict):
        fields = "; ".join(f"{name}: {_messages(msgs)}" for name, msgs in exc.details.items())
        text += f" ({fields})"
    return text


def usage_text(usage: dict[str, Any]) -> str:
    """`12 in (10 cached) · 30 out · cost 0.0004`, or "" when nothing was counted."""
    if not (usage.get("inputTokens") or usage.get("outputTokens")):
        return ""
    cached = f" ({usage['cachedTokens']} cached)" if usage.get("cachedTokens") else ""
    cost = f" · cost {usage['cost']:.3g}" if usage.get("cost") else ""
    return f"{usage['inputTokens']} in{cached} · {usage['outputTokens']} out{cost}"


def message_text(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("parts", []) if p["type"] == "text")


def _messages(value: Any) -> str:
    if isinstance(value, list):
        return " ".join(_messages(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_messages(item)}" for key, item in value.items())
    return str(value)


class Printer:
    """Output that keeps track of the cursor (at a line start or not) and of what each text
    part has shown, so that deltas, resyncs and final texts never print anything twice."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.at_line_start = True
        self._printed: dict[str, str] = {}  # text part id -> text shown so far
        self._assistant: set[str] = set()  # assistant message ids
        self._reported: set[str] = set()  # assistant messages whose ending was printed

    def write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self.out.flush()
            self.at_line_start = text.endswith("\n")

    def line(self, text: str) -> None:
        self.end_line()
        self.write(text + "\n")

    def end_line(self) -> None:
        if not self.at_line_start:
            self.write("\n")

    def notice(self, text: str) -> None:
        """A message about the chat itself, on stderr."""
        self.end_line()
        self.err.write(f"[{text}]\n")
        self.err.flush()

    # -- session events ----------------------------------------------------------------------

    def message_created(self, message: dict[str, Any]) -> None:
        if message["role"] == "assistant":
            self._assistant.add(message["id"])

    def message_updated(self, message: dict[str, Any]) -> None:
        """Say how an answer ended, once: what it cost, and how when it did not complete."""
        if message["role"] != "assistant" or message["status"] == "streaming":
            return
        if message["id"] in self._reported:  # already told (by an event or by a resync)
            return
        self._reported.add(message["id"])
        if message["status"] == "error" and message.get("error"):
            self.line(f"[error] {message['error']['code']}: {message['error']['message']}")
        elif message["status"] == "cancelled" and message["finishReason"] == "interrupted":
            self.line("[interrupted by the next message]")  # (a server stop says [interrupted])
        elif message["status"] in ("cancelled", "interrupted"):
            self.line(f"[{message['status']}]")
        if spent := usage_text(message["usage"]):
            self.line(f"[usage] {spent}")

    def history(self, path: list[dict[str, Any]], queue: list[dict[str, Any]]) -> None:
        """The active path, numbered for the commands, with versions and what answers cost;
        then the messages waiting."""
        for number, message in enumerate(path, 1):
            who = "you" if message["role"] == "user" else message["model"] or "answer"
            versions = message.get("versions") or {"count": 1}
            shown = f" <{versions['index']}/{versions['count']}>" if versions["count"] > 1 else ""
            spent = usage_text(message["usage"]) if message["role"] == "assistant" else ""
            cost = f"  [{spent}]" if spent else ""
            self.line(f"#{number} {who}{shown}: {_first_line(message_text(message))}{cost}")
        for message in queue:
            self.line(f"[queued] {_first_line(message_text(message))}")

    def part_created(self, part: dict[str, Any]) -> None:
        if part["type"] == "text" and part["messageId"] in self._assistant:
            self._text(part)
        elif part["type"] == "tool_call":
            self.line(f"[tool] {part['tool']} {_arguments(part['arguments'])}")
        elif part["type"] == "tool_result":
            verb = "failed:" if part["isError"] else "->"
            self.line(f"[tool] {part['tool']} {verb} {_summary(part['output'])}")

    def part_updated(self, part: dict[str, Any], delta: str | None) -> None:
        if delta is not None:
            if part["type"] == "text":
                self._printed[part["id"]] = self._printed.get(part["id"], "") + delta
                self.write(delta)
        elif part["type"] == "text" and part["messageId"] in self._assistant:
            self._text(part)
            if part["status"] != "streaming":
                self.end_line()
        elif part["type"] == "tool_call" and part["status"] not in QUIET_TOOL_STATUSES:
            self.line(f"[tool] {part['tool']}: {part['status']}")

    def todos(self, todos: list[dict[str, Any]]) -> None:
        self.line("[todo]")
        for todo in todos:
            label = todo["activeForm"] if todo["status"] == "in_progress" else ""
            self.line(f"  {TODO_MARKS.get(todo['status'], '[?]')} {label or todo['content']}")

    def synced(self, messages: list[dict[str, Any]], run_id: str | None) -> None:
        """After a resync: show what was missed of the answer being waited for."""
        for message in messages:
            if message["role"] != "assistant":
                continue
            self._assistant.add(message["id"])
            if run_id is not None and message["runId"] == run_id:
                for part in message["parts"]:
                    if part["type"] == "text" and part["text"]:
                        self._text(part)
                self.message_updated(message)

    def question(self, approval: dict[str, Any]) -> None:
        self.end_line()
        self.write(f"Approve {approval['tool']} {_arguments(approval['arguments'])}? [y/s/N] ")

    def _text(self, part: dict[str, Any]) -> None:
        """Print what of the part's text has not been shown yet; reprint it whole if what was
        shown diverged (events were missed and the deltas since do not line up)."""
        text, shown = part.get("text", ""), self._printed.get(part["id"], "")
        if not shown:
            self.end_line()
        if text.startswith(shown):
            self.write(text[len(shown) :])
        elif shown.startswith(text):
            return  # a resync's stored text lags behind the deltas (it is saved in batches)
        else:
            self.write("\n" + text)
        self._printed[part["id"]] = text


def _arguments(arguments: Any) -> str:
    return _short(json.dumps(arguments, ensure_ascii=False))


def _short(text: str) -> str:
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 3] + "..."


def _first_line(text: str) -> str:
    lines = text.strip().splitlines() or [""]
    return _short(lines[0]) + (" ..." if len(lines) > 1 else "")


def _summary(output: str) -> str:
    lines = output.strip().splitlines() or [""]
    more = f" (+{len(lines) - 1} lines)" if len(lines) > 1 else ""
    return _short(lines[0]) + more
