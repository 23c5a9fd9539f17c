"""MCP servers written with the SDK, run by the tests as real subprocesses."""
