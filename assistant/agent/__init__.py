"""The research agent: a ReAct loop over the hybrid index that ends in a cited (or abstaining) answer.

Submodules are imported explicitly (`assistant.agent.loop`, `.chat`...) so that importing the package,
e.g. for `AgentSettings` in the settings object, stays cheap.
"""
