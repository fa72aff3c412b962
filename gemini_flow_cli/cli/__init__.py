"""The root command: global options, lazily registered groups, and the one error handler."""

import copy
import importlib
import inspect
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from gemini_flow_cli import __version__
from gemini_flow_cli.cli.common import State
from gemini_flow_cli.core.storage import is_url
from gemini_flow_cli.errors import GeminiFlowError, as_error
from gemini_flow_cli.output import FORMATS, Output

# Every group, in the order `gemini-flow --help` lists them. A group's module is imported only
# when that group is invoked (or for help and completion, which need the whole tree): building
# every command of every group on each start costs time that `memory retrieve` in a loop pays.
GROUPS: dict[str, tuple[str, str]] = {
    "memory": ("gemini_flow_cli.cli.memory", "Store, retrieve, search and move shared memory."),
    "agent": ("gemini_flow_cli.cli.agent", "Register agents and read their records and metrics."),
    "swarm": ("gemini_flow_cli.cli.swarm", "Create swarms, manage membership, read their status."),
    "task": ("gemini_flow_cli.cli.task", "Orchestrate tasks, claim work atomically, record results."),
    "consensus": ("gemini_flow_cli.cli.consensus", "Request decisions and vote under a stated rule."),
    "metrics": ("gemini_flow_cli.cli.metrics", "Record and list metrics of agents, swarms and tasks."),
    "backup": ("gemini_flow_cli.cli.backup", "Create, verify, restore and prune backups."),
    "migrate": ("gemini_flow_cli.cli.migrate", "Show and change the database's schema version."),
    "config": ("gemini_flow_cli.cli.config", "Read and change configuration."),
    "key": ("gemini_flow_cli.cli.key", "Generate and rotate the encryption key."),
    "audit": ("gemini_flow_cli.cli.audit", "Read, verify and prune the tamper-evident audit log."),
    "session": ("gemini_flow_cli.cli.session", "Track long agent runs and resume them from checkpoints."),
    "workflow": ("gemini_flow_cli.cli.workflow", "Define multi-step plans, version them, run them as tasks."),
    "neural": ("gemini_flow_cli.cli.neural", "Keep the patterns that worked and pick the best one."),
    "hooks": ("gemini_flow_cli.cli.hooks", "Run commands after writes, on the events they fire."),
    "mcp": ("gemini_flow_cli.cli.mcp", "Serve the memory to coding agents over MCP, and set them up."),
    "apikey": ("gemini_flow_cli.cli.apikey", "Create, list and revoke the API keys of the HTTP server."),
}

# Commands that stand alone at the top (no group): name -> (module, function). Loaded as lazily.
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("gemini_flow_cli.cli.serve", "serve"),
}

GLOBAL_FLAGS = {"--json", "--quiet", "-q", "--no-color", "--debug"}
GLOBAL_VALUED = {"--db", "--format", "--busy-timeout"}


def hoist_global_options(args: list[str], own: frozenset[str] = frozenset()) -> list[str]:
    """Move global options given after the command to the front (``memory retrieve k --json``).

    Options the command defines itself (``own``, e.g. ``backup create --format sql``) stay where
    they are. Stops at ``--``, after which everything is an argument.
    """
    front: list[str] = []
    rest: list[str] = []
    seen_command = False
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name = arg.split("=", 1)[0]
        if name in own:
            rest.append(arg)
        elif seen_command and name in GLOBAL_FLAGS and "=" not in arg:
            front.append(arg)
        elif seen_command and name in GLOBAL_VALUED:
            if "=" in arg:
                front.append(arg)
            else:
                front.extend(args[i : i + 2])
                i += 1
        else:
            if arg in GROUPS or arg in COMMANDS:
                seen_command = True
            (rest if seen_command else front).append(arg)
        i += 1
    return front + rest


def _sniff_format(args: list[str]) -> str:
    if "--json" in args:
        return "json"
    for i, arg in enumerate(args):
        if arg.startswith("--format="):
            return arg.split("=", 1)[1]
        if arg == "--format" and i + 1 < len(args):
            return args[i + 1]
    value = os.environ.get("GEMINI_FLOW_FORMAT", "auto")
    return value if value in FORMATS else "auto"


class ReaderGone(Exception):
    """Stdout's reader went away (``| head -1``) while a command was writing to it.

    Deliberately not an OSError: Typer's main answers an EPIPE OSError with ``sys.exit(1)`` and
    no message, which made ``memory watch ... | head -1`` exit 1 whenever head had already left
    by its second line. Raised past Typer, it reaches RootGroup.main as the BrokenPipeError it is.
    """


def _discard_stdout() -> None:
    """Point stdout's descriptor at /dev/null: anything still buffered, and the interpreter's
    flush at exit, must not meet the closed pipe again (Python would print "Exception ignored
    ... BrokenPipeError" and exit 120)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real descriptor (CliRunner): nothing to flush there
        pass


class RootGroup(TyperGroup):
    """The root command, which turns every failure into the spec's exit status in one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BrokenPipeError as exc:
            raise ReaderGone() from exc

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer.exceptions import Abort, Exit, TyperException

        from gemini_flow_cli.cli.safety import check_arguments, harden

        args = list(sys.argv[1:] if args is None else args)
        args = hoist_global_options(args, self._leaf_options(args))
        fmt = _sniff_format(args)
        state = State(out=Output(fmt if fmt in FORMATS else "auto"), debug="--debug" in args)
        extra.setdefault("obj", state)
        harden(self)
        previous_handler = _handle_sigterm()
        try:
            check_arguments(args)
            result = super().main(
                args=args, prog_name=prog_name or "gemini-flow", complete_var=complete_var,
                standalone_mode=False, **extra,
            )
            status = result if isinstance(result, int) else 0
            if _signalled:  # Typer answers an interrupted command with 130 and no message
                print("Terminated.", file=sys.stderr)
                status = 128 + 15
        except GeminiFlowError as exc:
            status = report(state, exc)
        except Exit as exc:
            status = exc.exit_code
        except Abort:
            # Click turns Ctrl-C (and our SIGTERM, see Terminated) into Abort.
            print("Terminated." if _signalled else "Aborted.", file=sys.stderr)
            status = 128 + 15 if _signalled else 130
        except TyperException as exc:
            status = report_usage(state, exc)
        except Terminated:
            print("Terminated.", file=sys.stderr)
            status = 128 + 15
        except KeyboardInterrupt:
            print("Interrupted.", file=sys.stderr)
            status = 130
        except (BrokenPipeError, ReaderGone):
            # The reader of our output went away (`| head`): not an error of ours, so exit 0 and
            # say nothing (stderr may be the same closed pipe: `2>&1 | head`). What the command
            # had committed stays committed: commands print after their transaction ends.
            _discard_stdout()
            sys.stderr.close()
            status = 0
        except Exception as exc:  # noqa: BLE001 - the one place unexpected errors end up
            # A path the user gave that cannot be used: exit 2 naming it; a full disk wherever it
            # strikes (a backup, an export, a spool file): exit 6; anything else: a bug.
            status = report(state, as_error(exc, state.busy_timeout), cause=exc)
        finally:
            _restore_sigterm(previous_handler)
        if standalone_mode:
            sys.exit(status)
        return status


    def _leaf_options(self, args: list[str]) -> frozenset[str]:
        """The option names of the command that ``args`` invoke (walking group names)."""
        command = self
        for arg in args:
            if arg == "--":
                break
            sub = getattr(command, "commands", {}).get(arg)
            if sub is not None:
                command = sub
        if command is self:
            return frozenset()
        return frozenset(opt for param in command.params for opt in (*param.opts, *param.secondary_opts))


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is, so that it unwinds like Ctrl-C: the open
    transaction rolls back and temporary files are deleted by the code that made them."""


_signalled = False


def _on_sigterm(signum, frame):
    global _signalled
    _signalled = True
    raise Terminated()


def _handle_sigterm():
    import signal

    try:
        return signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError, AttributeError):  # not the main thread, or no SIGTERM here
        return None


def _restore_sigterm(previous) -> None:
    import signal

    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except (ValueError, OSError):
            pass


def report(state: State, exc: GeminiFlowError, cause: BaseException | None = None) -> int:
    """Print one error (JSON on stderr in JSON mode), a traceback only with --debug."""
    if state.debug:
        import traceback

        traceback.print_exception(cause or exc)
    state.out.error(exc.to_json(), exc.message)
    return exc.exit_status


def report_usage(state: State, exc) -> int:
    if type(exc).__name__ == "NoArgsIsHelpError":
        # `gemini-flow` or `gemini-flow memory` alone: the help itself, as text even in JSON
        # mode (it is for a person), on stderr with Click's usage-error status.
        exc.show()
        return 2
    hint = _dash_hint(exc)
    if hint:
        exc.message = f"{exc.message}. {hint}"
    if state.out.format in ("json", "jsonl"):
        error = GeminiFlowError("USAGE", exc.format_message())
        state.out.error(error.to_json(), error.message)
    else:
        # Click repeats the offending argument; escape it like every other message (CLI.md §9).
        import io

        from gemini_flow_cli.output import escape_control

        text = io.StringIO()
        exc.show(file=text)
        sys.stderr.write(escape_control(text.getvalue()))
        sys.stderr.flush()
    return 2 if exc.exit_code == 1 else exc.exit_code


def _dash_hint(exc) -> str | None:
    """For ``memory store counter -5``: a value that looks like an option goes after ``--``."""
    import re

    name = getattr(exc, "option_name", None)
    if type(exc).__name__ == "NoSuchOption" and name and re.fullmatch(r"-[\d.]+([eE][-+]?\d+)?", name):
        return f"A value starting with '-' goes after '--': gemini-flow ... KEY -- {name}"
    return None


def _version(value: bool) -> None:
    if value:
        print(f"gemini-flow {__version__}")
        raise typer.Exit()


def build_app(args: list[str] | None = None) -> typer.Typer:
    """The root Typer app with the groups this invocation needs."""
    app = typer.Typer(
        cls=RootGroup,
        name="gemini-flow",
        help="A persistent, trustworthy shared memory for teams of AI agents.\n\n"
        "One SQLite database (.hive-mind/hive.db, found like git finds .git) holds memory, agents, "
        "swarms, tasks and consensus decisions. Run 'gemini-flow GROUP COMMAND --help' for a "
        "command's options and examples.\n\n"
        "Example:\n\n"
        "\b\n"
        "    gemini-flow memory store greeting hello\n"
        "    gemini-flow memory retrieve greeting",
        no_args_is_help=True,
        add_completion=True,  # --install-completion / --show-completion (see completions/)
        context_settings={"help_option_names": ["-h", "--help"]},
        rich_markup_mode=None,
        pretty_exceptions_enable=False,
    )
    app.callback()(root)
    args = sys.argv[1:] if args is None else args
    for name in groups_needed(args):
        if name in COMMANDS:
            module_name, function = COMMANDS[name]
            callback = getattr(importlib.import_module(module_name), function)
            app.command(name=name, help=verbatim_paragraphs(inspect.getdoc(callback) or ""))(callback)
            continue
        module_name, help_text = GROUPS[name]
        group = only_command(importlib.import_module(module_name).app, command_named(args, name))
        keep_examples_verbatim(group, name)
        app.add_typer(group, name=name, help=help_text, epilog=group_epilog(name, group))
    return app


def command_named(args: list[str], group: str) -> str | None:
    """The word after ``group`` on the command line (the command it invokes), if any."""
    if _completing():
        return None
    try:
        word = args[args.index(group) + 1]
    except (ValueError, IndexError):
        return None
    return None if word.startswith("-") else word


def only_command(group: typer.Typer, command: str | None) -> typer.Typer:
    """``group`` with just ``command`` registered, when it has one of that name.

    Typer builds a Click command, with a signature inspection per parameter, for every command
    of a group on every start; `memory retrieve` in a loop should pay for one. Help, completion
    and a mistyped name (which needs its neighbours for "did you mean") get the whole group.
    """
    if command is None:
        return group
    commands = [c for c in group.registered_commands if _command_name(c) == command]
    groups = [g for g in group.registered_groups if g.name == command]
    if not commands and not groups:
        return group
    narrowed = copy.copy(group)
    narrowed.registered_commands, narrowed.registered_groups = commands, groups
    return narrowed


def _command_name(info) -> str:
    # Typer's own default: the function's name with underscores as dashes.
    return info.name or info.callback.__name__.replace("_", "-")


def _completing() -> bool:
    return any(k.startswith("_GEMINI_FLOW_COMPLETE") for k in os.environ)


def verbatim_paragraphs(text: str) -> str:
    """Mark indented paragraphs (example command lines) so that Click prints them as written.

    Click rewraps every paragraph to the terminal width and joins the lines of an indented one;
    an example must stay one pasteable line per command, so its paragraph gets Click's ``\\b``
    (no rewrap) marker.
    """
    paragraphs = text.split("\n\n")
    for i, paragraph in enumerate(paragraphs):
        if paragraph[:1].isspace() and paragraph.strip() and not paragraph.startswith("\b"):
            paragraphs[i] = "\b\n" + paragraph
    return "\n\n".join(paragraphs)


def keep_examples_verbatim(app: typer.Typer, path: str) -> None:
    """Apply :func:`verbatim_paragraphs` to every command of ``app`` and of its sub-groups,
    and give each sub-group without an epilog the ``Example:`` of :func:`group_epilog`."""
    import inspect

    from typer.models import DefaultPlaceholder

    for info in app.registered_commands:
        text = info.help if info.help is not None else inspect.getdoc(info.callback)
        if text:
            info.help = verbatim_paragraphs(text)
    for group in app.registered_groups:
        name = group.name if not isinstance(group.name, DefaultPlaceholder) else group.typer_instance.info.name
        sub_path = f"{path} {name}"
        keep_examples_verbatim(group.typer_instance, sub_path)
        if isinstance(group.epilog, DefaultPlaceholder) or group.epilog is None:
            group.epilog = group_epilog(sub_path, group.typer_instance)


def examples(help_text: str | None) -> list[str]:
    """The command lines of a docstring's ``Example:`` paragraphs (for group help and the man page)."""
    lines: list[str] = []
    in_example = False
    for line in (help_text or "").splitlines():
        stripped = line.strip()
        if stripped in ("Example:", "Examples:"):
            in_example = True
        elif in_example and line[:1].isspace() and stripped and stripped != "\b":
            lines.append(stripped)
        elif in_example and stripped and not line[:1].isspace() and stripped != "\b":
            in_example = False
    return lines


def group_epilog(name: str, app: typer.Typer) -> str | None:
    """``Example:`` for a group's --help: the first example of its first command."""
    import inspect

    for info in app.registered_commands:
        found = examples(info.help if info.help is not None else inspect.getdoc(info.callback))
        if found:
            return (
                f"Example:\n\n\b\n    {found[0]}\n\n"
                f"Run 'gemini-flow {name} COMMAND --help' for each command's options and examples."
            )
    return None


def groups_needed(args: list[str] | None) -> list[str]:
    args = sys.argv[1:] if args is None else args
    if not _completing():
        skip = False
        for arg in args:
            if skip:
                skip = False
            elif arg == "--":
                break
            elif arg in GLOBAL_VALUED:
                skip = True
            elif arg in GROUPS or arg in COMMANDS:
                return [arg]
            elif arg == "--version":
                return []  # answered by the root's eager option before any group is needed
    return [*GROUPS, *COMMANDS]


def root(
    ctx: typer.Context,
    db: Annotated[
        Optional[str],
        typer.Option("--db", envvar="GEMINI_FLOW_DB", help="The database file (default: the nearest .hive-mind/hive.db), or a postgresql:// URL.", show_default=False),
    ] = None,
    format: Annotated[
        str,
        typer.Option(
            "--format", envvar="GEMINI_FLOW_FORMAT", help="Output format: auto, table, json, jsonl or csv; auto is table on a terminal, json otherwise."
        ),
    ] = "auto",
    json_: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    busy_timeout: Annotated[
        float,
        typer.Option("--busy-timeout", envvar="GEMINI_FLOW_BUSY_TIMEOUT", min=0, help="Seconds to wait for another writer."),
    ] = 10.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No informational messages on stderr.")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="No colour or styling (also NO_COLOR).")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Full tracebacks for unexpected errors.")] = False,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """A persistent, trustworthy shared memory for teams of AI agents."""
    if format not in FORMATS:
        raise GeminiFlowError("USAGE", f"invalid --format {format!r}: use one of {', '.join(FORMATS)}")
    state: State = ctx.ensure_object(State)
    state.db_path = db if db is None or is_url(db) else Path(db)
    state.busy_timeout = busy_timeout
    state.debug = debug
    state.out = Output("json" if json_ else format, quiet=quiet, no_color=no_color)
    ctx.call_on_close(state.finish)


def main(args: list[str] | None = None, prog_name: str = "gemini-flow") -> None:
    """The console script ``gemini-flow``."""
    command = typer.main.get_command(build_app(args))
    command.main(args=args, prog_name=prog_name)


def command_tree():
    """The whole Click command tree (for completions, the man page and tests)."""
    return typer.main.get_command(build_app([]))
