"""The agent: algorithms, networks, memories, action policies and value schedules."""
