"""Build the model's view of a session: stored messages and parts -> ModelMessages."""

from __future__ import annotations

from typing import Any

from botical.agent.providers.base import ModelMessage, ToolCallRequest
from botical.services.messages import with_parts
from botical.services.tree import path_rows


def load_history(session_id: str, upto_message_id: str) -> list[ModelMessage]:
    """The path of the conversation from its first message down to `upto_message_id`, and
    nothing of its other versions (runs on the executor)."""
    history: list[ModelMessage] = []
    for message in with_parts(path_rows(session_id, upto_message_id)):
        if message["role"] == "user":
            text = "".join(p.get("text", "") for p in message["parts"] if p["type"] == "text")
            history.append(ModelMessage("user", text))
        else:
            history.extend(assistant_turns(message["parts"]))
    return history


def assistant_turns(parts: list[dict[str, Any]]) -> list[ModelMessage]:
    """One assistant message's parts as turns: per step, the assistant turn then tool results.

    A tool call without a stored result (the run stopped first) is left out, so the history
    always pairs every call with its result.
    """
    results = {p["toolCallId"]: p for p in parts if p["type"] == "tool_result"}
    turns: list[ModelMessage] = []
    text: list[str] = []
    calls: list[dict[str, Any]] = []

    def close_step() -> None:
        answered = [c for c in calls if c["toolCallId"] in results]
        if text or answered:
            turns.append(
                ModelMessage(
                    "assistant",
                    "".join(text),
                    tool_calls=tuple(
                        ToolCallRequest(c["toolCallId"], c["tool"], c["arguments"])
                        for c in answered
                    ),
                )
            )
        for call in answered:
            result = results[call["toolCallId"]]
            turns.append(
                ModelMessage(
                    "tool",
                    result["output"],
                    tool_call_id=call["toolCallId"],
                    name=call["tool"],
                    is_error=result["isError"],
                )
            )
        text.clear()
        calls.clear()

    for part in parts:
        if part["type"] == "step_start":
            close_step()
        elif part["type"] == "text":
            text.append(part.get("text", ""))
        elif part["type"] == "tool_call":
            calls.append(part)
    close_step()
    return turns
