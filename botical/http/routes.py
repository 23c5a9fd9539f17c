"""The built-in REST routes, registered like any plugin's."""

from __future__ import annotations

from botical.hookspecs import Register, hookimpl
from botical.http import health, projects, sessions, tools

ID = r"([a-z]+_[0-9a-z]+)"


@hookimpl
def botical_register_routes(register: Register) -> None:
    register(r"/", health.IndexHandler, {"path": str(health.STATIC_DIR)})
    register(r"/static/(.*)", health.StaticHandler, {"path": str(health.STATIC_DIR)})
    register(r"/health", health.HealthHandler)
    register(r"/health/ready", health.ReadyHandler)
    register(r"/-/plugins", health.PluginsHandler)
    register(r"/api/me", projects.MeHandler)
    register(r"/api/projects", projects.ProjectsHandler)
    register(rf"/api/projects/{ID}", projects.ProjectHandler)
    register(rf"/api/projects/{ID}/members", projects.MembersHandler)
    register(rf"/api/projects/{ID}/members/{ID}", projects.MemberHandler)
    register(rf"/api/projects/{ID}/sessions", sessions.ProjectSessionsHandler)
    register(rf"/api/projects/{ID}/agents", sessions.AgentsHandler)
    register(rf"/api/projects/{ID}/agents/([a-z][a-z0-9_-]*)", sessions.AgentHandler)
    register(rf"/api/projects/{ID}/tools", tools.ProjectToolsHandler)
    register(rf"/api/tools/{ID}", tools.ToolHandler)
    register(rf"/api/sessions/{ID}", sessions.SessionHandler)
    register(rf"/api/sessions/{ID}/archive", sessions.ArchiveHandler)
    register(rf"/api/sessions/{ID}/messages", sessions.MessagesHandler)
    register(rf"/api/sessions/{ID}/cancel", sessions.CancelHandler)
    register(rf"/api/sessions/{ID}/retry", sessions.RetryHandler)
    register(rf"/api/sessions/{ID}/approvals", sessions.SessionApprovalsHandler)
    register(rf"/api/sessions/{ID}/todos", sessions.TodosHandler)
    register(rf"/api/approvals/{ID}/(approve|reject)", sessions.ApprovalHandler)
