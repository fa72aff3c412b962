"""The core of gemini-flow: plain functions and classes over a SQLite connection.

Nothing here imports Typer or Rich, prints, exits, or reads the command line.
"""
