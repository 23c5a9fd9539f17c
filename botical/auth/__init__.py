"""Authentication (JWT access tokens, API keys) and project permissions."""
