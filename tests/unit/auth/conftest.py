import pytest

from botical.auth.apikeys import ApiKeyService
from botical.auth.identity import Authenticator
from botical.auth.tokens import TokenService
from botical.bus import EventBus
from botical.db import Database
from botical.db.migrations import migrate
from botical.services.projects import ProjectService
from botical.services.users import UserService

SECRET = "s" * 64  # long enough that pyjwt does not warn for HS512
TTL = 3600
MAX_TTL = 86400


@pytest.fixture
def db(database_url):
    """A migrated database on a fresh SQLite file or PostgreSQL schema, closed after the test."""
    database = Database(database_url)
    database.run_sync(migrate, database.peewee)
    yield database
    database.close()


@pytest.fixture
def users(db):
    return UserService(db)


@pytest.fixture
def projects(db):
    return ProjectService(db, EventBus())


@pytest.fixture
def tokens(db):
    return TokenService(SECRET, db, TTL, MAX_TTL)


@pytest.fixture
def apikeys(db):
    return ApiKeyService(db, touch_interval=0)


@pytest.fixture
def authenticator(db, tokens, apikeys):
    return Authenticator(db, tokens, apikeys)


@pytest.fixture
def alice(io_loop, users):
    """The id of a user called alice."""
    return io_loop.run_sync(lambda: users.create("alice"))["id"]
