import pytest

from botical.auth.apikeys import ApiKeyService
from botical.auth.identity import Authenticator
from botical.auth.tokens import TokenService
from botical.bus import EventBus
from botical.services.projects import ProjectService
from botical.services.users import UserService

SECRET = "s" * 64  # long enough that pyjwt does not warn for HS512
TTL = 3600
MAX_TTL = 86400


@pytest.fixture
def users(db):
    return UserService(db)


@pytest.fixture
def bus():
    return EventBus()


@pytest.fixture
def projects(db, bus):
    return ProjectService(db, bus)


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
