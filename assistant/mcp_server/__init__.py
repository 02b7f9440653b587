"""`ra mcp`: the user's index as an MCP server (Model Context Protocol, the official Python SDK).

Why: Claude Desktop, IDEs and other agents speak MCP; served this way they search the researcher's own
documents, read around a passage and get the same cited, checked answers as `ra ask`, with the provenance
(pages, offsets, boxes on the PDF page) that makes a citation checkable. `library` holds what the tools do
(no MCP in it), `asking` the agent kept warm between questions, `models` the typed results the SDK turns
into output schemas, and `server` the MCP wiring and transports.
"""
