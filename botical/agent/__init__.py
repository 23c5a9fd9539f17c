"""The agent runtime: providers, the step loop, and stream persistence."""
