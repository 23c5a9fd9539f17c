import pytest

from botical import errors
from botical.errors import (
    ERROR_CODES,
    BoticalError,
    ConfigError,
    NotFound,
    PluginError,
    ValidationError,
    internal_error,
)

# DESIGN.md section 3, "Error codes": public API, never renamed.
DESIGNED_CODES = (
    "PARSE_ERROR",
    "INVALID_FRAME",
    "VALIDATION_ERROR",
    "METHOD_NOT_FOUND",
    "UNAUTHORIZED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "PAYLOAD_TOO_LARGE",
    "TIMEOUT",
    "CANCELLED",
    "PROVIDER_ERROR",
    "INTERNAL_ERROR",
)

STATUSES = {
    "ParseError": ("PARSE_ERROR", 400),
    "InvalidFrame": ("INVALID_FRAME", 400),
    "ValidationError": ("VALIDATION_ERROR", 400),
    "MethodNotFound": ("METHOD_NOT_FOUND", 404),
    "Unauthorized": ("UNAUTHORIZED", 401),
    "Forbidden": ("FORBIDDEN", 403),
    "NotFound": ("NOT_FOUND", 404),
    "Conflict": ("CONFLICT", 409),
    "RateLimited": ("RATE_LIMITED", 429),
    "PayloadTooLarge": ("PAYLOAD_TOO_LARGE", 413),
    "Timeout": ("TIMEOUT", 504),
    "Cancelled": ("CANCELLED", 409),
    "ProviderError": ("PROVIDER_ERROR", 502),
    "InternalError": ("INTERNAL_ERROR", 500),
}


def test_error_codes_are_unique():
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)


def test_error_codes_are_exactly_the_designed_list():
    assert ERROR_CODES == DESIGNED_CODES


@pytest.mark.parametrize(("name", "expected"), sorted(STATUSES.items()))
def test_each_error_class_has_its_code_and_http_status(name, expected):
    cls = getattr(errors, name)
    assert issubclass(cls, BoticalError)
    assert (cls.code, cls.status) == expected


def test_every_boticalerror_subclass_has_a_listed_code():
    codes = {cls.code for cls in BoticalError.__subclasses__()}
    assert codes == set(DESIGNED_CODES)


def test_payload_without_details_has_only_code_and_message():
    assert NotFound().to_payload() == {"code": "NOT_FOUND", "message": "Not found"}


def test_payload_with_details_includes_them():
    error = ValidationError(details={"name": ["Missing data for required field."]})
    assert error.to_payload() == {
        "code": "VALIDATION_ERROR",
        "message": "Invalid parameters",
        "details": {"name": ["Missing data for required field."]},
    }


def test_a_given_message_replaces_the_default_and_is_the_exception_text():
    error = NotFound("Project not found")
    assert error.to_payload()["message"] == "Project not found"
    assert str(error) == "Project not found"


def test_internal_error_has_a_fixed_message_and_no_details():
    assert internal_error().to_payload() == {"code": "INTERNAL_ERROR", "message": "Internal error"}


@pytest.mark.parametrize("cls", [ConfigError, PluginError])
def test_startup_errors_are_never_client_errors(cls):
    assert not issubclass(cls, BoticalError)
