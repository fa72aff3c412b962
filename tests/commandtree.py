"""The real command tree, walked once, for every test that must cover every command.

``iter_commands()`` lists the leaf commands of the installed program (what a user can run), so
a test written over it covers commands added later without being edited. ``SKIPPED`` is the ONE
registry of commands a walking test must not run as-is (they block until something happens, or
reach outside the scratch folder); every walking test honours it, and whoever adds such a
command adds it here with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import typer

# Typer 0.28 carries its own copy of Click: the tree's classes are these, not the `click` package's.
from typer import _click as click

# path -> why a walking test does not run it unattended. Paths of commands that do not exist
# (yet) are harmless: they name the kind, so the command is skipped the day it lands.
SKIPPED: dict[tuple[str, ...], str] = {
    ("task", "wait"): "blocks until the task finishes or --timeout passes",
    ("consensus", "wait"): "blocks until the decision closes or --timeout passes",
    ("memory", "watch"): "streams changes until interrupted (CLI.md section 2)",
    ("serve",): "runs a server until interrupted",
    ("mcp", "serve"): "runs an MCP server (stdio, or --http) until interrupted",
}


# Documented example lines (README.md, --help) that the examples test does not run, by a piece
# of their text, with the reason. Example lines invoking a command of SKIPPED are skipped too.
EXAMPLE_SKIPS: dict[str, str] = {
    "pip install": "installs packages from the network",
    "pipx install": "installs the program for the user",
    "pipx inject": "installs into the user's pipx environment",
    "sudo ": "runs as root (installs and sets up a system's PostgreSQL)",
    "git clone": "needs the repository's address",
    "python -m build": "builds the package from a checkout",
    "python -m venv": "creates an environment",
    "python3 -m venv": "creates an environment",
    ".venv/bin/": "runs a checkout's own tools",
    "~/.venvs/": "uses the environment the install example makes",
    "--install-completion": "writes the user's shell start-up files",
    "completions/": "needs a checkout's completions folder",
    "~/.zfunc": "writes the user's shell configuration",
    "man ": "needs man and a manual path",
    "man -l": "needs man",
    "ssh ": "reaches another machine",
    "some-generator": "a placeholder for the user's own program",
    "pass show": "needs the user's password store",
    "notes.md": "reads the user's own file",
    "db-credentials.json": "reads the user's own file (a secret, encrypted with a key the README makes later)",
    "team.json.gz": "restores a backup someone else made",
    "teammate.json.gz": "restores a backup someone else made",
    "while sleep": "loops forever in the background",
    "curl ": "needs a running `gemini-flow serve` (tests/test_server.py runs the README's HTTP examples against one)",
    "mcp install --client codex": "writes the user's own Codex configuration (~/.codex/config.toml)",
    "--scope user": "writes the user's own configuration, outside the project",
    "docker run": "starts a container",
    "apt-get install": "installs system packages",
    "postgresql://": "needs a PostgreSQL server (tests/test_postgres.py and CI's second run on one cover it)",
    "$SERVER_URL": "needs a PostgreSQL server (tests/test_postgres.py restores a server's backup both ways)",
}


@dataclass(frozen=True)
class Command:
    """One runnable command: ``path`` as typed after ``gemini-flow`` (``("memory", "store")``)."""

    path: tuple[str, ...]
    click: click.Command = field(repr=False)

    @property
    def params(self) -> list[click.Parameter]:
        return list(self.click.params)

    @property
    def name(self) -> str:
        return " ".join(self.path)

    @property
    def skipped(self) -> str | None:
        """The reason from :data:`SKIPPED`, or None when a walking test may run it."""
        return SKIPPED.get(self.path)

    def option(self, name: str) -> click.Parameter | None:
        """The parameter spelled ``name`` on the command line (``--limit``), if the command has it."""
        for param in self.click.params:
            if name in (*param.opts, *getattr(param, "secondary_opts", ())):
                return param
        return None


def iter_commands(app: typer.Typer | click.Command | None = None) -> list[Command]:
    """Every non-hidden leaf command of ``app`` (default: the whole program), in help order.

    Built now, not cached: groups land while others work, and a test collecting at import
    would miss them.
    """
    if app is None:
        from gemini_flow_cli.cli import command_tree

        root = command_tree()
    elif isinstance(app, typer.Typer):
        root = typer.main.get_command(app)
    else:
        root = app
    found: list[Command] = []

    def walk(command: click.Command, ctx: click.Context, path: tuple[str, ...]) -> None:
        if hasattr(command, "list_commands"):
            for name in command.list_commands(ctx):
                sub = command.get_command(ctx, name)
                if sub is not None and not getattr(sub, "hidden", False):
                    walk(sub, click.Context(sub, info_name=name, parent=ctx), (*path, name))
        elif path:
            found.append(Command(path=path, click=command))

    walk(root, click.Context(root, info_name="gemini-flow"), ())
    return found
