"""`gemini-flow task ...`: orchestrate work, claim it atomically, move it through its states."""

from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

TaskId = Annotated[str, typer.Argument(help="The task id (task-... as orchestrate printed it).", show_default=False)]
LIST_COLUMNS = ("id", "status", "priority", "agentId", "swarmId", "parentId", "progress", "description")


def _emit_task(view: dict) -> None:
    st = state()
    if st.out.format == "table":
        fields = {k: v for k, v in view.items() if k != "subtasks"}
        st.out.emit(fields, title=f"Task {view['id']}")
        if view.get("subtasks"):
            st.out.table(view["subtasks"], title="Subtasks")
    else:
        st.out.emit(view)


@app.command()
def orchestrate(
    description: Annotated[str, typer.Argument(help="What the task is.", show_default=False)],
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="The swarm whose agents get the work.", show_default=False)] = None,
    priority: Annotated[str, typer.Option("--priority", help="low, medium, high or critical.")] = "medium",
    strategy: Annotated[
        str, typer.Option("--strategy", help="parallel, sequential (each subtask waits for the previous) or adaptive (assign only matching work).")
    ] = "parallel",
    max_agents: Annotated[
        Optional[int], typer.Option("--max-agents", help="At most this many agents (default: the swarm's max_agents).", show_default=False)
    ] = None,
    depends_on: Annotated[
        Optional[list[str]], typer.Option("--depends-on", help="A task this one waits for (repeatable).", show_default=False)
    ] = None,
    subtask: Annotated[
        Optional[list[str]], typer.Option("--subtask", help="A subtask description (repeatable, in order).", show_default=False)
    ] = None,
    estimated_duration: Annotated[
        Optional[int], typer.Option("--estimated-duration", help="Estimated duration in seconds.", show_default=False)
    ] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="A JSON object kept with the task.", show_default=False)] = None,
    max_attempts: Annotated[
        Optional[int], typer.Option("--max-attempts", min=1, help="Claims allowed per unit of work before a lapsed lease fails it (default 3).",
                                    show_default=False)
    ] = None,
) -> None:
    """Record a task and its subtasks, and assign the work to the swarm's agents.

    Each subtask (or the task itself, without subtasks) goes to the swarm member whose
    capabilities share the most words with it, then the least loaded (pending and running tasks),
    then the smallest id; at most --max-agents agents are used. Terminated agents get nothing.
    An unknown swarm or dependency exits 1; a dependency cycle exits 2 and records nothing; a
    shut-down swarm exits 3.

    Example:

        gemini-flow task orchestrate "Implement user authentication" --swarm "$SWARM" --priority high --strategy sequential --subtask "Design auth schema" --subtask "Implement login API" --estimated-duration 7200
    """
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=True)
    result = tasks.orchestrate(
        db,
        description,
        swarm_id=swarm,
        priority=priority,
        strategy=strategy,
        max_agents=max_agents,
        depends_on=depends_on or (),
        subtasks=subtask or (),
        estimated_duration=estimated_duration,
        context=tasks.parse_json(context, "--context", object_only=True),
        max_attempts=max_attempts,
    )
    if st.out.format == "table":
        st.out.emit({k: v for k, v in result.items() if k != "subtasks"}, title=f"Task {result['taskId']}")
        if result["subtasks"]:
            st.out.table(result["subtasks"], title="Subtasks")
    else:
        st.out.emit(result, rows=result["subtasks"] or [result])


@app.command()
def claim(
    agent: Annotated[str, typer.Option("--agent", help="The agent taking the work.", show_default=False)],
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Only tasks of this swarm.", show_default=False)] = None,
    lease: Annotated[
        Optional[str],
        typer.Option("--lease", help="Give the claim a deadline (30s, 5m); extend it with `task heartbeat`.", show_default=False),
    ] = None,
) -> None:
    """Atomically take the next ready task and mark it running.

    The highest-priority (critical, high, medium, low), then oldest, pending task whose
    dependencies all completed, assigned to the agent or unassigned in one of its swarms (or in no
    swarm). No two agents ever receive the same task. Nothing ready: exit 1 with nothing on stdout.
    With --lease, the task is the agent's only until the lease passes without a heartbeat: the
    next claim (by anyone) takes it back, counting a retry against this agent; after
    --max-attempts claims (orchestrate, default 3) it fails instead, with the reason.

    Example:

        gemini-flow task claim --agent "$AGENT" --lease 5m

        while task=$(gemini-flow task claim --agent "$AGENT" --json); do id=$(echo "$task" | jq -r .id); gemini-flow task complete "$id" --result '{"ok": true}'; done
    """
    from gemini_flow_cli.core import tasks

    st = state()
    seconds = None
    if lease is not None:
        from gemini_flow_cli.core.durations import parse_duration

        seconds = parse_duration(lease, what="lease")
    db = st.open_db(create=True, actor=agent)
    _emit_task(tasks.claim(db, agent, swarm_id=swarm, lease=seconds))


@app.command()
def heartbeat(
    task_id: TaskId,
    agent: Annotated[str, typer.Option("--agent", help="The agent holding the task.", show_default=False)],
) -> None:
    """Extend the lease of a task claimed with --lease, by its duration from now.

    Exits 3 when the task is no longer running under this agent (its lease lapsed and another
    agent claimed it, or it finished).

    Example:

        while sleep 60; do gemini-flow -q task heartbeat "$TASK" --agent "$AGENT" || break; done &
    """
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=True, actor=agent)
    _emit_task(tasks.heartbeat(db, task_id, agent))


@app.command()
def start(
    task_id: TaskId,
    agent: Annotated[Optional[str], typer.Option("--agent", help="The agent starting it (must match an assigned agent; required when none is).", show_default=False)] = None,
) -> None:
    """Start a pending task by id (pending -> running); its dependencies must be completed.

    A task with no assigned agent needs --agent (else exit 2); an assigned task may omit it.

    Example:

        gemini-flow task start "$TASK" --agent "$AGENT"
    """
    _move(task_id, "start", agent_id=agent)


@app.command()
def progress(
    task_id: TaskId,
    value: Annotated[float, typer.Option("--value", help="Progress from 0 to 1.", show_default=False)],
) -> None:
    """Record the progress of a running task (0 to 1).

    Example:

        gemini-flow task progress "$TASK" --value 0.5
    """
    _move(task_id, "progress", value=value)


AgentCheck = Annotated[
    Optional[str],
    typer.Option("--agent", help="The agent reporting: exit 3 unless it holds the task.", show_default=False),
]


@app.command()
def complete(
    task_id: TaskId,
    result: Annotated[Optional[str], typer.Option("--result", help="The result, as JSON.", show_default=False)] = None,
    agent: AgentCheck = None,
) -> None:
    """Complete a running task (running -> completed) with an optional JSON result.

    Records completed_at and actual_duration, and recomputes the agent's performance_score and the
    swarm's completed_tasks and success_rate from the rows. With --agent, exits 3 unless that
    agent holds the task (its lease may have lapsed and been taken over).

    Example:

        gemini-flow task complete "$TASK" --result '{"files": 4}' --agent "$AGENT"
    """
    from gemini_flow_cli.core import tasks

    _move(task_id, "complete", result=tasks.parse_json(result, "--result"), agent_id=agent)


@app.command()
def fail(
    task_id: TaskId,
    error: Annotated[Optional[str], typer.Option("--error", help="What went wrong.", show_default=False)] = None,
    agent: AgentCheck = None,
) -> None:
    """Mark a running task failed (running -> failed).

    With --agent, exits 3 unless that agent holds the task.

    Example:

        gemini-flow task fail "$TASK" --error "tests did not pass"
    """
    _move(task_id, "fail", error=error, agent_id=agent)


@app.command()
def retry(task_id: TaskId) -> None:
    """Put a failed task back to pending (failed -> pending), counting one more retry.

    The task keeps its agent; its times, progress, result and error are cleared.

    Example:

        gemini-flow task retry "$TASK"
    """
    _move(task_id, "retry")


@app.command()
def cancel(task_id: TaskId) -> None:
    """Cancel a pending or running task; a task with subtasks cancels its unfinished subtasks.

    Example:

        gemini-flow task cancel "$TASK"
    """
    _move(task_id, "cancel")


def _move(task_id: str, action: str, **kwargs) -> None:
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=True, actor=kwargs.get("agent_id"))
    _emit_task(tasks.transition(db, task_id, action, **kwargs))


@app.command("list")
def list_(
    status: Annotated[Optional[str], typer.Option("--status", help="pending, running, completed, failed or cancelled.", show_default=False)] = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="Only tasks of this swarm.", show_default=False)] = None,
    agent: Annotated[Optional[str], typer.Option("--agent", help="Only tasks of this agent.", show_default=False)] = None,
    parent: Annotated[Optional[str], typer.Option("--parent", help="Only subtasks of this task.", show_default=False)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List tasks in creation order.

    Example:

        gemini-flow task list --status pending --swarm "$SWARM"
    """
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=False)
    result = tasks.list_tasks(db, status=status, swarm_id=swarm, agent_id=agent, parent_id=parent,
                              limit=limit, offset=offset)
    emit_list(result, "tasks", columns=LIST_COLUMNS if st.out.format == "table" else None)


@app.command()
def show(task_id: TaskId) -> None:
    """Show one task and its subtasks.

    Example:

        gemini-flow task show "$TASK" --json
    """
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=False)
    _emit_task(tasks.show(db, task_id))


@app.command()
def wait(
    task_id: TaskId,
    timeout: Annotated[
        Optional[float], typer.Option("--timeout", min=0, help="Give up after this many seconds (exit 1).", show_default=False)
    ] = None,
) -> None:
    """Wait until a task is completed, failed or cancelled, then show it.

    Wakes within milliseconds of another process's commit (as memory watch). Exits 0 once the task finished (whatever its outcome: read
    its status), and 1 (NOT_FOUND, "did not finish") when --timeout passes first.

    Example:

        gemini-flow task wait "$TASK" --timeout 600 --json | jq -r .status
    """
    from gemini_flow_cli.core import tasks

    st = state()
    db = st.open_db(create=False)
    _emit_task(tasks.wait(db, task_id, timeout=timeout))
