"""`botical chat`: a plain-text terminal client built on `botical.client` (docs/client.md).

Each line read from stdin is sent to the session; the answer is printed as it streams, with
tool calls, approval prompts, the todo list and what it cost. On a terminal, a line typed
during an answer waits in the session's queue; `:commands` edit, regenerate, switch
versions, fork, interrupt and show usage (`botical.chat.commands`). Ctrl-C during an answer
cancels it; Ctrl-C again (or when idle), or end of input, quits with exit code 0. The
conversation's state is a small state machine (`botical.chat.turn`), printing is
`botical.chat.render`, and the loop that joins them is `botical.chat.loop`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from botical.chat.loop import Chat
from botical.chat.render import Printer, explain
from botical.client import BoticalClient, ClientError, InvalidURL, server_url

DEFAULT_URL = "ws://127.0.0.1:4096/ws"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of `botical chat`."""
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="the server: the URL `botical serve` prints (its token is used), "
        f"ws://host:port/ws, or host:port (default {DEFAULT_URL})",
    )
    parser.add_argument("--token", help="access token or API key (or BOTICAL_TOKEN)")
    parser.add_argument("--project", help="project id (default: your first, or a new one)")
    parser.add_argument("--session", help="session id to continue (default: a new session)")


def main(args: argparse.Namespace) -> int:
    """Run `botical chat`; return the exit code."""
    try:
        url = server_url(args.url)
    except InvalidURL as exc:
        print(f"botical chat: {exc.message}", file=sys.stderr)
        return 2
    token = args.token or url.token or os.environ.get("BOTICAL_TOKEN")
    if not token:
        print(
            "botical chat: give --token, set BOTICAL_TOKEN, or pass the URL botical serve "
            "printed (it carries ?token=)",
            file=sys.stderr,
        )
        return 2
    try:
        return asyncio.run(_chat(url.ws, token, args.project, args.session))
    except KeyboardInterrupt:  # Ctrl-C before the conversation started
        return 130


async def _chat(url: str, token: str, project_id: str | None, session_id: str | None) -> int:
    printer = Printer(sys.stdout, sys.stderr)
    chat = Chat(printer, sys.stdin.isatty())
    client = BoticalClient(url, token, on_state=chat.on_state)
    try:
        await client.connect()
        session = await open_session(client, project_id, session_id)
        events = await client.subscribe(f"session:{session['id']}")
        synced = await client.request("sessions.sync", sessionId=session["id"])
    except ClientError as exc:
        print(f"botical chat: {explain(exc)}", file=sys.stderr)
        await client.close()
        return 1
    printer.notice(
        f"session {session['id']} in project {session['projectId']}; type a message "
        "(Ctrl-C cancels an answer, Ctrl-C again or Ctrl-D quits; :help lists commands)"
    )
    try:
        return await chat.run(client, session["id"], events, synced)
    finally:
        await client.close()


async def open_session(
    client: BoticalClient, project_id: str | None, session_id: str | None
) -> dict[str, Any]:
    """The session to talk in: the one given, else a new one in the given or first project
    (a project named "chat" is created when the user has none). It is titled by the server
    after its first message."""
    if session_id:
        return await client.request("sessions.get", sessionId=session_id)
    if not project_id:
        listed = await client.rest("GET", "/api/projects")
        if listed["items"]:
            project_id = listed["items"][0]["id"]
        else:
            project_id = (await client.rest("POST", "/api/projects", {"name": "chat"}))["id"]
    return await client.request("sessions.create", projectId=project_id)
