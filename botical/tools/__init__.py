"""Agent tools: the built-ins, the sandbox that confines them, and custom-tool executors."""
