"""The MCP door (CLI.md §9, issue 13): the shared memory as Model Context Protocol tools.

``tools`` holds the tool list and what each tool does, over the same core functions the CLI
commands call, and imports no SDK; ``server`` wraps it in the official MCP SDK's low-level
server (the ``[mcp]`` extra); ``install`` writes the coding agents' configuration files.
Nothing here is imported by the plain CLI: only `gemini-flow mcp ...` loads it.
"""
