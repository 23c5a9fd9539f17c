"""Test harness for Botical and its plugin authors (loaded as the `botical` pytest plugin)."""

from botical.testing.harness import ApiClient, EventLog, Response, start_app

__all__ = ["ApiClient", "EventLog", "Response", "start_app"]
