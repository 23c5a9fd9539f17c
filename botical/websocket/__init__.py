"""The WebSocket API at /ws: protocol, connections, broadcasting, handlers as plugins."""
