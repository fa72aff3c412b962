"""`gemini-flow consensus ...`: decisions of a swarm, by recorded votes under a stated rule."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

DecisionId = Annotated[str, typer.Argument(help="The decision id (decision-... as request printed it).", show_default=False)]
LIST_COLUMNS = ("decisionId", "swarmId", "type", "decision", "confidence", "participants", "duration", "proposal")


def _emit(view: dict) -> None:
    st = state()
    if st.out.format == "table":
        fields = {k: v for k, v in view.items() if k != "votingData"}
        data = view["votingData"]
        fields.update(approve=data["approve"], reject=data["reject"], abstain=data["abstain"])
        st.out.emit(fields, title=f"Decision {view['decisionId']}")
        if data["details"]:
            st.out.table(data["details"], title="Votes")
    else:
        st.out.emit(view, rows=view["votingData"]["details"] or [view])


@app.command()
def request(
    swarm: Annotated[str, typer.Option("--swarm", help="The swarm whose members vote.", show_default=False)],
    proposal: Annotated[str, typer.Option("--proposal", help="What is being decided.", show_default=False)],
    type_: Annotated[str, typer.Option("--type", help="majority, weighted or byzantine.", show_default=False)],
    threshold: Annotated[
        Optional[float],
        typer.Option("--threshold", help="Approval share to exceed (default 0.5; byzantine 2/3, at least 2/3).", show_default=False),
    ] = None,
    timeout: Annotated[int, typer.Option("--timeout", help="Milliseconds until the decision times out (= rejected).")] = 30000,
    metadata: Annotated[Optional[str], typer.Option("--metadata", help="A JSON object kept with the decision.", show_default=False)] = None,
) -> None:
    """Open a decision; the swarm's current (not terminated) members are its electorate.

    majority: approvals / (approvals + rejections) > threshold. weighted: the same with each vote
    weighing performance_score x confidence. byzantine: approvals / members > 2/3, and at least 4
    members. The decision closes as soon as its outcome cannot change, or at the timeout
    (decision "timeout", i.e. rejected). Unknown swarm: exit 1; too few members or a bad
    threshold: exit 2; shut-down swarm: exit 3.

    Example:

        gemini-flow consensus request --swarm "$SWARM" --proposal "Deploy v1.0.4 to production" --type majority --threshold 0.6 --timeout 30000
    """
    from gemini_flow_cli.core import consensus
    from gemini_flow_cli.core.tasks import parse_json

    st = state()
    db = st.open_db(create=True)
    _emit(
        consensus.request(
            db, swarm, proposal, type_, threshold=threshold, timeout_ms=timeout,
            metadata=parse_json(metadata, "--metadata", object_only=True),
        )
    )


@app.command()
def vote(
    decision_id: DecisionId,
    choice: Annotated[str, typer.Argument(help="approve, reject or abstain.", show_default=False)],
    agent: Annotated[str, typer.Option("--agent", help="The voting member.", show_default=False)],
    confidence: Annotated[float, typer.Option("--confidence", help="How sure the voter is, 0 to 1 (weighted consensus uses it).")] = 1.0,
) -> None:
    """Vote on a decision, once, as a member of its electorate.

    Not a member: exit 4. A second vote, or a vote after the deadline: exit 3. A decision that
    closed early (its outcome was already certain) still takes a member's first vote until the
    deadline: it is recorded with "late": true and exits 0, and never changes the decision.

    Example:

        gemini-flow consensus vote "$DECISION" approve --agent "$AGENT" --confidence 0.9
    """
    from gemini_flow_cli.core import consensus

    st = state()
    db = st.open_db(create=True, actor=agent)
    _emit(consensus.vote(db, decision_id, agent, choice, confidence=confidence))


@app.command()
def show(decision_id: DecisionId) -> None:
    """Show a decision, its votes and (once closed) its outcome.

    Example:

        gemini-flow consensus show "$DECISION" --json
    """
    from gemini_flow_cli.core import consensus

    st = state()
    db = st.open_db(create=False)
    _emit(consensus.show(db, decision_id))


@app.command("list")
def list_(
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Only decisions of this swarm.", show_default=False)] = None,
    decision: Annotated[
        Optional[str], typer.Option("--decision", help="pending, approved, rejected or timeout.", show_default=False)
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List decisions in the order they were requested.

    Example:

        gemini-flow consensus list --swarm "$SWARM" --decision approved
    """
    from gemini_flow_cli.core import consensus

    st = state()
    db = st.open_db(create=False)
    result = consensus.list_decisions(db, swarm_id=swarm, decision=decision, limit=limit, offset=offset)
    emit_list(result, "decisions", columns=LIST_COLUMNS if st.out.format in ("table", "csv") else None)


@app.command()
def wait(
    decision_id: DecisionId,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", min=0, help="Give up after this many seconds (exit 1).", show_default=False)
    ] = None,
) -> None:
    """Wait until a decision is closed (approved, rejected or timed out), then show it.

    Every decision closes by its own deadline, so this always ends; --timeout gives up sooner
    (exit 1).

    Example:

        gemini-flow consensus wait "$DECISION" --json | jq -r .decision
    """
    from gemini_flow_cli.core import consensus

    st = state()
    db = st.open_db(create=False)
    _emit(consensus.wait(db, decision_id, timeout=timeout))
