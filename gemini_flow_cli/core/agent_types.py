"""The 66 agent types of the original project, in its 16 categories.

``agent spawn --type`` accepts only these names; anything else is refused with the closest names.
"""

from __future__ import annotations

from gemini_flow_cli.errors import GeminiFlowError

CATEGORIES: dict[str, tuple[str, ...]] = {
    "core-development": ("coder", "planner", "researcher", "reviewer", "tester"),
    "swarm-coordination": ("hierarchical-coordinator", "mesh-coordinator", "adaptive-coordinator"),
    "consensus-systems": (
        "byzantine-fault-tolerant", "raft-consensus", "gossip-protocol", "crdt-manager",
        "paxos-coordinator", "blockchain-consensus", "vector-clock-sync",
    ),
    "github-integration": (
        "github-modes", "pr-manager", "code-review-swarm", "issue-tracker", "release-manager",
        "repo-architect", "multi-repo-swarm", "project-board-sync", "github-metrics",
        "security-scanner", "documentation-sync", "changelog-generator", "dependency-updater",
    ),
    "performance-optimization": (
        "performance-monitor", "load-balancer", "cache-optimizer", "query-optimizer",
        "resource-allocator", "bottleneck-analyzer",
    ),
    "neural-processing": ("pattern-recognizer", "neural-architect", "training-coordinator", "inference-optimizer"),
    "quantum-computing": ("quantum-circuit-designer", "qubit-state-manager", "quantum-algorithm-specialist"),
    "security-systems": ("security-auditor", "penetration-tester", "encryption-specialist", "access-controller"),
    "data-analytics": ("data-analyst", "etl-specialist", "visualization-creator"),
    "infrastructure": ("devops-engineer", "cloud-architect", "container-orchestrator", "infrastructure-monitor"),
    "knowledge-management": ("knowledge-curator", "documentation-writer", "ontology-builder"),
    "communication": ("api-designer", "protocol-implementer"),
    "monitoring-systems": ("log-analyzer", "alert-manager", "metrics-collector"),
    "creative-development": ("ui-designer", "ux-researcher"),
    "specialized-tasks": ("migration-specialist", "integration-expert"),
    "ai-ml-operations": ("model-deployer", "experiment-tracker"),
}

# type -> category, in the order of the table above.
AGENT_TYPES: dict[str, str] = {t: category for category, types in CATEGORIES.items() for t in types}

COORDINATION_CATEGORY = "swarm-coordination"


def category_of(agent_type: str) -> str:
    """The category of a known type (KeyError for an unknown one)."""
    return AGENT_TYPES[agent_type]


def closest(name: str, n: int = 3) -> list[str]:
    """The known types whose names are closest to ``name`` (difflib ratio), best first."""
    import difflib

    matches = difflib.get_close_matches(name.lower(), list(AGENT_TYPES), n=n, cutoff=0.5)
    if not matches:
        # Nothing similar as a whole: try the types that share a word with it ("coordinator").
        words = set(name.lower().replace("_", "-").split("-"))
        matches = [t for t in AGENT_TYPES if words & set(t.split("-"))][:n]
    return matches


def validate(agent_type: str) -> str:
    """``agent_type`` if it is one of the 66, else INVALID_INPUT (exit 2) naming the closest types."""
    if agent_type in AGENT_TYPES:
        return agent_type
    suggestions = closest(agent_type)
    hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
    raise GeminiFlowError(
        "INVALID_INPUT",
        f"unknown agent type {agent_type!r}{hint} (`gemini-flow agent types` lists all {len(AGENT_TYPES)})",
        details={"type": agent_type, "suggestions": suggestions},
    )


def is_coordinator(agent_type: str) -> bool:
    """Coordinator types lead a hierarchical swarm: the swarm-coordination category, or ``*-coordinator``."""
    return AGENT_TYPES.get(agent_type) == COORDINATION_CATEGORY or agent_type.endswith("-coordinator")


def listing() -> list[dict[str, str]]:
    """Every type with its category, in the table's order."""
    return [{"type": t, "category": c} for t, c in AGENT_TYPES.items()]
