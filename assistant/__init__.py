"""The research assistant: settings, CLI, agent, LLM backends, tools and sandbox."""
