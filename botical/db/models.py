"""peewee models: one per table of DESIGN.md section 6. Timestamps are UTC milliseconds."""

from __future__ import annotations

import json
from typing import Any

import peewee as pw

from botical.db.database import Prepared, database, now_ms


class JSONField(pw.TextField):
    """JSON stored as text, portable across SQLite and PostgreSQL."""

    def db_value(self, value: Any) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def python_value(self, value: str | None) -> Any:
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = database
        legacy_table_names = False


class User(BaseModel):
    id = pw.CharField(primary_key=True, max_length=40)
    name = pw.CharField(unique=True, max_length=64)
    is_admin = pw.BooleanField(default=False)
    can_execute_code = pw.BooleanField(default=False)
    created_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "users"


class Project(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    owner_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    name = pw.CharField(max_length=200)
    description = pw.TextField(default="")
    path = pw.TextField(null=True)
    owner = pw.ForeignKeyField(User, backref="owned_projects", on_delete="CASCADE")
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "projects"


class ProjectMember(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    project_id: str
    user_id: str

    project = pw.ForeignKeyField(Project, backref="members", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="memberships", on_delete="CASCADE")
    role = pw.CharField(max_length=16)
    created_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "project_members"
        primary_key = pw.CompositeKey("project", "user")


class ApiKey(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    user_id: str
    project_id: str | None

    id = pw.CharField(primary_key=True, max_length=40)
    user = pw.ForeignKeyField(User, backref="api_keys", on_delete="CASCADE")
    project = pw.ForeignKeyField(Project, null=True, backref="api_keys", on_delete="CASCADE")
    name = pw.CharField(max_length=200, default="")
    key_hash = pw.CharField(unique=True, max_length=64)
    hint = pw.CharField(max_length=16)
    created_at = pw.BigIntegerField(default=now_ms)
    last_used_at = pw.BigIntegerField(null=True)
    revoked_at = pw.BigIntegerField(null=True)

    class Meta:
        table_name = "api_keys"


class RevokedToken(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    user_id: str | None

    jti = pw.CharField(primary_key=True, max_length=64)
    user = pw.ForeignKeyField(User, null=True, on_delete="CASCADE")
    expires_at = pw.BigIntegerField(index=True)
    revoked_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "revoked_tokens"


class Session(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    project_id: str
    parent_id: str | None
    created_by_id: str | None

    id = pw.CharField(primary_key=True, max_length=40)
    project = pw.ForeignKeyField(Project, backref="sessions", on_delete="CASCADE")
    parent = pw.ForeignKeyField("self", null=True, backref="children", on_delete="CASCADE")
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    title = pw.CharField(max_length=500, default="")
    agent = pw.CharField(max_length=64, default="default")
    model = pw.CharField(max_length=200, null=True)
    status = pw.CharField(max_length=16, default="active", index=True)
    input_tokens = pw.BigIntegerField(default=0)
    output_tokens = pw.BigIntegerField(default=0)
    cached_tokens = pw.BigIntegerField(default=0)
    cost = pw.DoubleField(default=0.0)
    head_id = pw.CharField(max_length=40, null=True)  # the last message of the active path
    forked_from = pw.CharField(max_length=40, null=True)  # sessions.fork: the source session
    forked_at = pw.CharField(max_length=40, null=True)  # ...and the message it was forked at
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)
    archived_at = pw.BigIntegerField(null=True)

    class Meta:
        table_name = "sessions"


def locked_session(session_id: str) -> Session | None:
    """The session's row, locked until the transaction ends: every change to a session's run,
    queue or message tree takes this first, so they happen one at a time per session across
    nodes (PostgreSQL: SELECT ... FOR UPDATE; SQLite runs one transaction at a time)."""
    query = Session.select().where(Session.id == session_id)
    if database.obj.for_update:
        query = query.for_update()
    return query.first()


# The hot reads of one session by id (authorization and `sessions.get`), compiled once.
SESSION_BY_ID = Prepared(
    Session, lambda session_id: Session.select().where(Session.id == session_id), 1
)


class Message(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str
    created_by_id: str | None
    parts: Any  # backref

    id = pw.CharField(primary_key=True, max_length=40)
    session = pw.ForeignKeyField(Session, backref="messages", on_delete="CASCADE")
    role = pw.CharField(max_length=16)
    parent_id = pw.CharField(max_length=40, null=True)
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    agent = pw.CharField(max_length=64, null=True)
    model = pw.CharField(max_length=200, null=True)
    run_id = pw.CharField(max_length=40, null=True, index=True)
    status = pw.CharField(max_length=16, default="completed")
    finish_reason = pw.CharField(max_length=32, null=True)
    error = JSONField(null=True)
    input_tokens = pw.BigIntegerField(default=0)
    output_tokens = pw.BigIntegerField(default=0)
    cached_tokens = pw.BigIntegerField(default=0)
    cost = pw.DoubleField(default=0.0)
    # A message sent while the session was busy: how it waits (queue, interrupt, rollback)
    # and, for interrupt and rollback, the run it stops.
    queue_mode = pw.CharField(max_length=16, null=True)
    target_run = pw.CharField(max_length=40, null=True)
    idempotency_key = pw.CharField(max_length=128, null=True)
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "messages"
        indexes = ((("session", "idempotency_key"), True),)


class Part(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    message_id: str
    session_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    message = pw.ForeignKeyField(Message, backref="parts", on_delete="CASCADE")
    session = pw.ForeignKeyField(Session, backref="parts", on_delete="CASCADE")
    type = pw.CharField(max_length=16)
    position = pw.IntegerField()
    status = pw.CharField(max_length=16, null=True)
    content = JSONField(default=dict)
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "parts"
        indexes = ((("message", "position"), True),)


class Agent(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    project_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    project = pw.ForeignKeyField(Project, backref="agents", on_delete="CASCADE")
    name = pw.CharField(max_length=64)
    description = pw.TextField(default="")
    prompt = pw.TextField(default="")
    model = pw.CharField(max_length=200, null=True)
    tools = JSONField(null=True)
    max_steps = pw.IntegerField(default=25)
    rules = JSONField(default=list)
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "agents"
        indexes = ((("project", "name"), True),)


class CustomTool(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    project_id: str
    created_by_id: str | None

    id = pw.CharField(primary_key=True, max_length=40)
    project = pw.ForeignKeyField(Project, backref="custom_tools", on_delete="CASCADE")
    name = pw.CharField(max_length=64)
    description = pw.TextField(default="")
    parameters = JSONField(default=dict)
    kind = pw.CharField(max_length=16)
    config = JSONField(default=dict)
    enabled = pw.BooleanField(default=True)
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "custom_tools"
        indexes = ((("project", "name"), True),)


class Todo(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    session = pw.ForeignKeyField(Session, backref="todos", on_delete="CASCADE")
    content = pw.TextField()
    active_form = pw.TextField(default="")
    status = pw.CharField(max_length=16, default="pending")
    position = pw.IntegerField()
    created_at = pw.BigIntegerField(default=now_ms)
    updated_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "todos"


class Approval(BaseModel):
    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str
    requested_by_id: str | None
    resolved_by_id: str | None

    id = pw.CharField(primary_key=True, max_length=40)
    session = pw.ForeignKeyField(Session, backref="approvals", on_delete="CASCADE")
    message_id = pw.CharField(max_length=40, null=True)
    part_id = pw.CharField(max_length=40, null=True)
    run_id = pw.CharField(max_length=40, null=True)
    tool_name = pw.CharField(max_length=64)
    arguments = JSONField(default=dict)
    status = pw.CharField(max_length=16, default="pending", index=True)
    scope = pw.CharField(max_length=16, null=True)
    reason = pw.TextField(null=True)
    requested_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    resolved_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = pw.BigIntegerField(default=now_ms)
    expires_at = pw.BigIntegerField()
    resolved_at = pw.BigIntegerField(null=True)

    class Meta:
        table_name = "approvals"


class Run(BaseModel):
    """A run in progress: one per session (the unique key), owned by one node, which renews
    its lease while the run is alive. A row whose lease ran out is a dead node's run."""

    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    session = pw.ForeignKeyField(Session, unique=True, on_delete="CASCADE")
    project_id = pw.CharField(max_length=40)
    node = pw.CharField(max_length=40, index=True)
    lease_until = pw.BigIntegerField(index=True)
    started_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "runs"


class UsageRecord(BaseModel):
    """What one run cost: a ledger row written when its answer is finished, kept when the
    answer is later removed (rollback) and never copied (fork), so totals count each run once."""

    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str

    id = pw.CharField(primary_key=True, max_length=40)  # the run's id
    session = pw.ForeignKeyField(Session, on_delete="CASCADE")
    project_id = pw.CharField(max_length=40, index=True)
    message_id = pw.CharField(max_length=40)
    model = pw.CharField(max_length=200)
    input_tokens = pw.BigIntegerField(default=0)
    output_tokens = pw.BigIntegerField(default=0)
    cached_tokens = pw.BigIntegerField(default=0)
    cost = pw.DoubleField(default=0.0)
    created_at = pw.BigIntegerField(default=now_ms, index=True)

    class Meta:
        table_name = "usage_records"


class TodoSnapshot(BaseModel):
    """A session's whole todo list as it was set at `created_at`, one row per change, so a
    fork takes the list as it was at the message it forks from."""

    # Column and backref attributes peewee adds, declared for type checkers.
    session_id: str

    id = pw.CharField(primary_key=True, max_length=40)
    session = pw.ForeignKeyField(Session, on_delete="CASCADE")
    todos = JSONField(default=list)
    created_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "todo_snapshots"
        indexes = ((("session", "created_at"), False),)


RUN_OF_SESSION = Prepared(Run, lambda session_id: Run.select().where(Run.session == session_id), 1)


class SchemaVersion(BaseModel):
    version = pw.IntegerField(primary_key=True)
    applied_at = pw.BigIntegerField(default=now_ms)

    class Meta:
        table_name = "schema_version"


ALL_MODELS: tuple[type[BaseModel], ...] = (
    User,
    Project,
    ProjectMember,
    ApiKey,
    RevokedToken,
    Session,
    Message,
    Part,
    Agent,
    CustomTool,
    Todo,
    Approval,
    Run,
    UsageRecord,
    TodoSnapshot,
)
