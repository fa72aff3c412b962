"""`gemini-flow swarm ...`: swarms, their membership and their status."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

SwarmId = Annotated[str, typer.Argument(help="The swarm id (swarm-...).")]
AgentId = Annotated[str, typer.Argument(help="The agent id (agent-...).")]

LIST_COLUMNS = ["id", "topology", "strategy", "status", "activeAgents", "maxAgents", "coordinator", "createdAt"]


@app.command()
def init(
    topology: Annotated[str, typer.Option("--topology", help="hierarchical, mesh, ring or star.", show_default=False)],
    max_agents: Annotated[int, typer.Option("--max-agents", help="Most members the swarm takes.")] = 8,
    strategy: Annotated[str, typer.Option("--strategy", help="parallel, sequential or adaptive.")] = "parallel",
    config: Annotated[Optional[str], typer.Option("--config", help="A JSON object of configuration.", show_default=False)] = None,
) -> None:
    """Create an active swarm and print its id.

    On a terminal only the id is printed (for `$(...)`); JSON output is the swarm's record.

    Example:

        SWARM=$(gemini-flow swarm init --topology hierarchical --max-agents 5 --json | jq -r .id)

        gemini-flow swarm init --topology mesh --strategy adaptive --config '{"region": "eu"}'
    """
    from gemini_flow_cli.core import swarms
    from gemini_flow_cli.core.metrics import parse_json_object

    st = state()
    conf = parse_json_object(config, "config")
    record = swarms.init(st.open_db(create=True), topology, max_agents=max_agents, strategy=strategy, config=conf)
    if st.out.format == "table":
        st.out.message(f"Created {record['topology']} swarm (max {record['maxAgents']} agents)")
        st.out.raw(record["id"])
    else:
        st.out.emit(record)


@app.command("list")
def list_(
    status: Annotated[Optional[str], typer.Option("--status", help="Only swarms with this status: active or shutdown.", show_default=False)] = None,
    topology: Annotated[Optional[str], typer.Option("--topology", help="Only swarms of this topology.", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List swarms, oldest first, with their member counts and coordinators.

    Example:

        gemini-flow swarm list --status active
    """
    from gemini_flow_cli.core import swarms

    st = state()
    result = swarms.list_swarms(st.open_db(create=False), status=status, topology=topology, limit=limit, offset=offset)
    emit_list(result, "swarms", columns=LIST_COLUMNS)


@app.command()
def show(swarm_id: SwarmId) -> None:
    """Show one swarm's record and its members in joining order. Exits 1 when missing.

    Example:

        gemini-flow swarm show "$SWARM"
    """
    from gemini_flow_cli.core import swarms

    st = state()
    st.out.emit(swarms.get(st.open_db(create=False), swarm_id))


@app.command()
def status(swarm_id: SwarmId) -> None:
    """Show a swarm's status: members, task counts and performance (seed's Swarm Status).

    Throughput is completed tasks per hour over the swarm's life; efficiency is estimated over actual
    task time (capped at 1); coordination is the share of members active in the last 5 minutes.
    Figures without data are 0 or null.

    Example:

        gemini-flow swarm status "$SWARM"

        gemini-flow swarm status "$SWARM" --json | jq .tasks
    """
    from gemini_flow_cli.core import swarms

    st = state()
    st.out.emit(swarms.status(st.open_db(create=False), swarm_id))


@app.command()
def join(swarm_id: SwarmId, agent_id: AgentId) -> None:
    """Add an agent to a swarm.

    Exits 1 if either is missing; 3 if the swarm is full (max agents) or shut down, the agent is
    terminated, or already a member. The agent is the actor in the audit log.

    Example:

        gemini-flow swarm join "$SWARM" "$AGENT"
    """
    from gemini_flow_cli.core import swarms

    st = state()
    result = swarms.join(st.open_db(create=True, actor=agent_id), swarm_id, agent_id)
    st.out.done(result, f"{agent_id} joined {swarm_id} ({result['activeAgents']}/{result['maxAgents']})")


@app.command()
def leave(swarm_id: SwarmId, agent_id: AgentId) -> None:
    """Remove an agent from a swarm. Exits 1 when it is not a member.

    Example:

        gemini-flow swarm leave "$SWARM" "$AGENT"
    """
    from gemini_flow_cli.core import swarms

    st = state()
    result = swarms.leave(st.open_db(create=True, actor=agent_id), swarm_id, agent_id)
    st.out.done(result, f"{agent_id} left {swarm_id} ({result['activeAgents']}/{result['maxAgents']})")


@app.command()
def shutdown(swarm_id: SwarmId) -> None:
    """Shut a swarm down: it takes no new members or tasks. Its records stay.

    Shutting down a shut-down swarm exits 3.

    Example:

        gemini-flow swarm shutdown "$SWARM"
    """
    from gemini_flow_cli.core import swarms

    st = state()
    result = swarms.shutdown(st.open_db(create=True), swarm_id)
    st.out.done(result, f"Swarm {swarm_id} shut down")
