"""`gemini-flow metrics ...`: figures agents and scripts record about themselves."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

LIST_COLUMNS = ["id", "timestamp", "entityType", "entityId", "name", "value", "unit"]


@app.command()
def record(
    name: Annotated[str, typer.Argument(help="The metric's name (e.g. tokens_used).")],
    value: Annotated[float, typer.Argument(help="A number.")],
    entity_type: Annotated[str, typer.Option("--entity-type", help="agent, swarm, task or system.", show_default=False)],
    entity_id: Annotated[str, typer.Option("--entity-id", help="The id of the agent, swarm or task (any name for system).", show_default=False)],
    metadata: Annotated[Optional[str], typer.Option("--metadata", help="A JSON object of extra data.", show_default=False)] = None,
    unit: Annotated[Optional[str], typer.Option("--unit", help="The unit (ms, bytes, count, ...).", show_default=False)] = None,
    period: Annotated[
        Optional[str], typer.Option("--aggregation-period", help="minute, hour or day, if the value aggregates a period.", show_default=False)
    ] = None,
) -> None:
    """Record one figure about an agent, swarm, task or the system, timestamped now.

    An agent, swarm or task id must exist (exit 1 otherwise). When the entity is an agent, the agent
    is the actor in the audit log.

    Example:

        gemini-flow metrics record --entity-type agent --entity-id "$AGENT" tokens_used 1834 --unit count

        gemini-flow metrics record --entity-type system --entity-id ci build_seconds 312.5 --unit s
    """
    from gemini_flow_cli.core import metrics
    from gemini_flow_cli.core.metrics import parse_json_object

    st = state()
    meta = parse_json_object(metadata)
    db = st.open_db(create=True, actor=entity_id if entity_type == "agent" else None)
    result = metrics.record(
        db, entity_type, entity_id, name, value, metadata=meta, unit=unit, aggregation_period=period
    )
    st.out.done(result, f"Recorded {name}={result['value']} for {entity_type} {entity_id} (#{result['id']})")


@app.command("list")
def list_(
    entity_type: Annotated[Optional[str], typer.Option("--entity-type", help="agent, swarm, task or system.", show_default=False)] = None,
    entity_id: Annotated[Optional[str], typer.Option("--entity-id", help="Only this entity.", show_default=False)] = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Only this metric name.", show_default=False)] = None,
    since: Annotated[
        Optional[str], typer.Option("--since", help="A duration back from now (1h, 7d) or an ISO time.", show_default=False)
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List recorded metric rows, newest first.

    Example:

        gemini-flow metrics list --entity-type agent --entity-id "$AGENT" --name cpu_usage --since 1h

        gemini-flow metrics list --since 2025-08-03T00:00:00Z --format csv > metrics.csv
    """
    from gemini_flow_cli.core import metrics

    st = state()
    db = st.open_db(create=False)
    result = metrics.list_metrics(
        db, entity_type=entity_type, entity_id=entity_id, name=name,
        since=metrics.parse_since(since) if since is not None else None, limit=limit, offset=offset,
    )
    emit_list(result, "metrics", columns=LIST_COLUMNS)
