"""`gemini-flow workflow ...`: reusable multi-step plans, versioned, run as tasks."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from gemini_flow_cli.cli.common import Limit, Offset, emit_list, state

app = typer.Typer(no_args_is_help=True)

WorkflowRef = Annotated[str, typer.Argument(metavar="NAME", help="The workflow's name (its latest version) or a version's id (workflow-...).", show_default=False)]
Version = Annotated[Optional[int], typer.Option("--version", min=1, help="This version of the named workflow instead of the latest.", show_default=False)]
DefinitionFile = Annotated[
    Optional[Path], typer.Option("--file", "-f", help="The definition: JSON, or YAML when the name ends in .yaml or .yml. '-' reads standard input.", show_default=False)
]
Yaml = Annotated[bool, typer.Option("--yaml", help="Read the definition as YAML whatever its name (needs gemini-flow[yaml]).")]
LIST_COLUMNS = ("name", "version", "id", "category", "executionCount", "successRate", "updatedAt")


def _definition(file: Optional[Path], yaml: bool):
    from gemini_flow_cli.cli.common import read_input
    from gemini_flow_cli.core import workflows

    source = None if file is None or str(file) == "-" else file
    text = read_input(None, source, what="the workflow definition")
    as_yaml = yaml or (source is not None and source.suffix.lower() in (".yaml", ".yml"))
    return workflows.parse(text, yaml=as_yaml)


def _emit(view: dict) -> None:
    st = state()
    if st.out.format == "table":
        fields = {k: v for k, v in view.items() if k not in ("steps", "recentExecutions", "versions")}
        st.out.emit(fields, title=f"Workflow {view['name']} v{view['version']}")
        if view.get("steps"):
            st.out.table(view["steps"], title="Steps")
    else:
        st.out.emit(view)


@app.command()
def create(
    name: Annotated[str, typer.Argument(help="The workflow's name.", show_default=False)],
    file: DefinitionFile = None,
    yaml: Yaml = False,
    created_by: Annotated[Optional[str], typer.Option("--created-by", help="Who made it (free text).", show_default=False)] = None,
) -> None:
    """Record a workflow definition; a changed definition becomes the next version.

    The definition (from --file, or standard input) is an object with "steps": each step has an
    "id", a "description", and optionally "dependencies" (ids of other steps) and "capabilities"
    (what the agent doing it must offer); optional "description", "category", "tags" and
    "estimatedDuration" (seconds). An unknown key, an unknown dependency or a cycle exits 2 naming
    it. The same definition as the latest version changes nothing ("created": false).

    Example:

        printf '%s' '{"steps": [{"id": "design", "description": "Design the schema"}, {"id": "api", "description": "Write the API", "dependencies": ["design"]}, {"id": "ui", "description": "Build the UI", "dependencies": ["design"]}, {"id": "ship", "description": "Release", "dependencies": ["api", "ui"]}]}' > release.json

        gemini-flow workflow create release --file release.json
    """
    from gemini_flow_cli.core import workflows

    st = state()
    definition = _definition(file, yaml)
    record = workflows.create(st.open_db(create=True), name, definition, created_by=created_by)
    if st.out.format == "table":
        verb = "Created" if record["created"] else "Unchanged:"
        st.out.message(f"{verb} workflow {record['name']} version {record['version']} ({record['id']})")
    else:
        st.out.emit(record)


@app.command()
def validate(
    file: DefinitionFile = None,
    yaml: Yaml = False,
) -> None:
    """Check a definition without recording it.

    Exits 0 and prints the normalised definition, or exits 2 naming the unknown key, the unknown
    dependency or the cycle.

    Example:

        printf '%s' '{"steps": [{"id": "a", "description": "A", "dependencies": ["b"]}, {"id": "b", "description": "B", "dependencies": ["a"]}]}' | gemini-flow workflow validate || echo "exit $?"
    """
    from gemini_flow_cli.core import workflows

    st = state()
    normal = workflows.validate(_definition(file, yaml))
    result = {"valid": True, "steps": len(normal["steps"]), "definition": normal}
    st.out.done(result, f"Valid: {len(normal['steps'])} step(s), no unknown dependency, no cycle")


@app.command("list")
def list_(
    category: Annotated[Optional[str], typer.Option("--category", help="Only workflows of this category.", show_default=False)] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every version, not only the latest of each name.")] = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> None:
    """List workflows by name, the latest version of each, with their execution figures.

    Example:

        gemini-flow workflow list --all
    """
    from gemini_flow_cli.core import workflows

    st = state()
    result = workflows.list_workflows(st.open_db(create=False), category=category, all_versions=all_,
                                      limit=limit, offset=offset)
    emit_list(result, "workflows", columns=LIST_COLUMNS if st.out.format == "table" else None)


@app.command()
def show(ref: WorkflowRef, version: Version = None) -> None:
    """Show a workflow version: its steps, execution figures, recent executions and versions.

    executionCount counts every run; successRate = succeeded / (succeeded + failed) over its
    finished executions (null until one finishes). Unknown name or version: exit 1.

    Example:

        gemini-flow workflow show release --json | jq '{executionCount, successRate, executions}'
    """
    from gemini_flow_cli.core import workflows

    st = state()
    _emit(workflows.show(st.open_db(create=False), ref, version=version))


@app.command()
def run(
    ref: WorkflowRef,
    version: Version = None,
    swarm: Annotated[Optional[str], typer.Option("--swarm", help="The swarm whose agents get the steps.", show_default=False)] = None,
    priority: Annotated[str, typer.Option("--priority", help="low, medium, high or critical.")] = "medium",
    max_agents: Annotated[
        Optional[int], typer.Option("--max-agents", help="At most this many agents (default: the swarm's max_agents).", show_default=False)
    ] = None,
    context: Annotated[Optional[str], typer.Option("--context", help="JSON input for this execution, kept with its task.", show_default=False)] = None,
    max_attempts: Annotated[
        Optional[int], typer.Option("--max-attempts", min=1, help="Claims allowed per step before a lapsed lease fails it (default 3).", show_default=False)
    ] = None,
) -> None:
    """Start one execution: a task whose subtasks are the steps, with their dependencies.

    Agents claim, heartbeat, complete and fail the steps with the task commands; a step is ready
    when the steps it depends on completed. With --swarm, each step goes to a member (by
    capability words and load); a step listing capabilities goes only to a member offering all of
    them, and none exits 3 with nothing recorded. The execution succeeds when its task completes
    and fails when it fails (a step failed and was not retried).

    Example:

        gemini-flow workflow run release --swarm "$SWARM" --priority high --json | jq -r .taskId
    """
    from gemini_flow_cli.core import jsontext, workflows

    st = state()
    parsed = jsontext.parse(context, what="--context") if context is not None else None
    result = workflows.run(st.open_db(create=True), ref, version=version, swarm_id=swarm, priority=priority,
                           max_agents=max_agents, context=parsed, max_attempts=max_attempts)
    if st.out.format == "table":
        st.out.emit({k: v for k, v in result.items() if k not in ("subtasks", "steps")},
                    title=f"Execution of {result['name']} v{result['version']}")
        st.out.table(result["steps"], title="Steps")
    else:
        st.out.emit(result, rows=result["steps"])
