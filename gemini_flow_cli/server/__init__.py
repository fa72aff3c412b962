"""The HTTP door of gemini-flow (`gemini-flow serve`, CLI.md §9): an ASGI application over the same
core as the CLI. Needs the optional extra ``gemini-flow[server]``; only `serve` imports this package.

- ``operations.py``: every endpoint (method, path, role, parameters' JSON Schemas, handler);
- ``app.py``: the Starlette application, authentication and the error -> status mapping's use;
- ``openapi.py``: the OpenAPI document, built from the same operation table.
"""
