"""Business logic: plain Python, no Tornado, no frames. Each committed change is a bus event."""
