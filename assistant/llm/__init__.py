"""LLM backends behind one protocol: OpenAI-compatible chat completions (llama.cpp embedded, vLLM, Ollama).

`models` resolves a model spec to files, `llamacpp` runs the embedded offline server, `client` talks to any
server by URL. Submodules are imported explicitly so that `import assistant.llm` stays cheap.
"""
