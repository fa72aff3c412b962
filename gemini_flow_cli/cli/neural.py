"""`gemini-flow neural ...`: keep the patterns that worked, and pick the best one for a job."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

PatternId = Annotated[str, typer.Argument(help="The pattern id (a number, as store printed it).", show_default=False)]
AgentType = Annotated[
    Optional[str], typer.Option("--agent-type", help="An agent type (`gemini-flow agent types` lists them).", show_default=False)
]
LIST_COLUMNS = ("id", "patternType", "agentType", "domain", "accuracy", "validationScore", "usageCount", "updatedAt")


def _emit(view: dict) -> None:
    st = state()
    st.out.emit(view, title=f"Neural pattern {view['id']}")


@app.command()
def store(
    pattern_type: Annotated[str, typer.Argument(metavar="TYPE", help="What kind of pattern (free text: coordination, prompt, ...).", show_default=False)],
    data: Annotated[
        Optional[str], typer.Argument(help="The pattern as JSON; '-' or nothing reads standard input.", show_default=False)
    ] = None,
    file: Annotated[Optional[Path], typer.Option("--file", "-f", help="Read the pattern's JSON from this file.", show_default=False)] = None,
    agent_type: AgentType = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="The problem domain (free text).", show_default=False)] = None,
    accuracy: Annotated[Optional[float], typer.Option("--accuracy", help="Measured accuracy, 0 to 1.", show_default=False)] = None,
    validation_score: Annotated[
        Optional[float], typer.Option("--validation-score", help="Accuracy on validation data, 0 to 1.", show_default=False)
    ] = None,
    iterations: Annotated[Optional[int], typer.Option("--iterations", help="Training iterations it took.", show_default=False)] = None,
    performance_impact: Annotated[
        Optional[float], typer.Option("--performance-impact", help="Measured improvement it brought (any finite number).", show_default=False)
    ] = None,
) -> None:
    """Record a pattern (any JSON) with the figures that say how good it is.

    The JSON comes from DATA, --file, or standard input, and may be as large as a memory value
    (memory.maxValueSize; larger exits 5). --accuracy and --validation-score are from 0 to 1;
    an unknown --agent-type exits 2. Prints the pattern with its id.

    Example:

        gemini-flow neural store coordination '{"split": "by-module", "reviewers": 2}' --agent-type coder --domain web --accuracy 0.92 --validation-score 0.88 --iterations 40
    """
    from gemini_flow_cli.cli.common import read_input
    from gemini_flow_cli.core import jsontext, neural

    st = state()
    text = read_input(data, file, what="the pattern")
    parsed = jsontext.parse(text, what="the pattern")
    db = st.open_db(create=True)
    _emit(neural.store(db, pattern_type, parsed, agent_type=agent_type, domain=domain, accuracy=accuracy,
                       validation_score=validation_score, iterations=iterations,
                       performance_impact=performance_impact))


@app.command("list")
def list_(
    pattern_type: Annotated[Optional[str], typer.Option("--type", help="Only patterns of this type.", show_default=False)] = None,
    agent_type: AgentType = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Only patterns of this domain.", show_default=False)] = None,
    min_accuracy: Annotated[
        Optional[float], typer.Option("--min-accuracy", help="Only patterns at least this accurate (0 to 1).", show_default=False)
    ] = None,
    sort_by: Annotated[str, typer.Option("--sort-by", help="accuracy, validation, usage, created or updated.")] = "accuracy",
    sort_order: Annotated[str, typer.Option("--sort-order", help="desc or asc.")] = "desc",
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List patterns, most accurate first (patterns without the sorted figure last).

    Example:

        gemini-flow neural list --agent-type coder --min-accuracy 0.8 --sort-by usage
    """
    from gemini_flow_cli.core import neural

    st = state()
    result = neural.list_patterns(st.open_db(create=False), pattern_type=pattern_type, agent_type=agent_type,
                                  domain=domain, min_accuracy=min_accuracy, sort_by=sort_by,
                                  sort_order=sort_order, limit=limit, offset=offset)
    emit_list(result, "patterns", columns=LIST_COLUMNS if st.out.format == "table" else None)


@app.command()
def show(pattern_id: PatternId) -> None:
    """Show one pattern with its data. Exits 1 when there is none with that id.

    Example:

        PATTERN=$(gemini-flow neural list --limit 1 --json | jq -r '.patterns[0].id'); gemini-flow neural show "$PATTERN"
    """
    from gemini_flow_cli.core import neural

    st = state()
    _emit(neural.show(st.open_db(create=False), pattern_id))


@app.command()
def use(pattern_id: PatternId) -> None:
    """Count one use of a pattern and print it (what an agent runs when it applies one).

    Example:

        gemini-flow neural use "$(gemini-flow neural best --agent-type coder --json | jq -r .id)" --json | jq .data
    """
    from gemini_flow_cli.core import neural

    st = state()
    _emit(neural.use(st.open_db(create=True), pattern_id))


@app.command()
def best(
    agent_type: Annotated[str, typer.Option("--agent-type", help="The agent type the pattern is for.", show_default=False)],
    pattern_type: Annotated[Optional[str], typer.Option("--type", help="Only patterns of this type.", show_default=False)] = None,
    domain: Annotated[Optional[str], typer.Option("--domain", help="Only patterns of this domain.", show_default=False)] = None,
) -> None:
    """Show the best pattern for an agent type.

    Best is the highest accuracy, then the highest validation score, then the most used, then
    the newest. Patterns without an accuracy never count. None: exit 1.

    Example:

        gemini-flow neural best --agent-type coder --domain web
    """
    from gemini_flow_cli.core import neural

    st = state()
    _emit(neural.best(st.open_db(create=False), agent_type, pattern_type=pattern_type, domain=domain))


@app.command()
def prune(
    older_than: Annotated[
        Optional[str], typer.Option("--older-than", help="Patterns not updated for this long (30d, 12h).", show_default=False)
    ] = None,
    min_accuracy: Annotated[
        Optional[float], typer.Option("--min-accuracy", help="Patterns whose accuracy is below this (0 to 1).", show_default=False)
    ] = None,
    pattern_type: Annotated[Optional[str], typer.Option("--type", help="Only patterns of this type.", show_default=False)] = None,
    agent_type: AgentType = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete the patterns that match every criterion given.

    At least one of --older-than and --min-accuracy is required (exit 2 otherwise). A pattern
    without a recorded accuracy is never pruned by --min-accuracy.

    Example:

        gemini-flow neural prune --min-accuracy 0.5 --dry-run

        gemini-flow neural prune --older-than 90d --type coordination
    """
    from gemini_flow_cli.core import neural
    from gemini_flow_cli.core.durations import parse_duration

    st = state()
    seconds = parse_duration(older_than, what="--older-than") if older_than is not None else None
    db = st.open_db(create=not dry_run)
    result = neural.prune(db, older_than=seconds, min_accuracy=min_accuracy, pattern_type=pattern_type,
                          agent_type=agent_type, dry_run=dry_run)
    verb = "Would delete" if dry_run else "Deleted"
    st.out.done(result, f"{verb} {result['deleted']} pattern(s)")
