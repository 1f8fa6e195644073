"""No import circles in the subscriber (model code queues tasks by path, ``subscriber.queue``)
or the hub, no import from the metrics up into the hub, and one hub module that enqueues;
and the tasks, the entry layer, import the models. Late imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

import django_push

PACKAGE = Path(django_push.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The django_push modules ``path`` imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in known)
    return found


def graph(prefix: str) -> dict[str, set[str]]:
    paths = {
        module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in str(path)
    }
    known = set(paths)
    return {
        name: {target for target in imports_of(path, known) if target.startswith(prefix)} - {name}
        for name, path in paths.items()
        if name.startswith(prefix)
    }


def cycle(edges: dict[str, set[str]]) -> list[str]:
    """One import circle, as the list of modules along it, or []."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_subscriber_has_no_import_circle():
    edges = graph("django_push.subscriber")
    assert "django_push.subscriber.models" in edges["django_push.subscriber.tasks"]
    assert "django_push.subscriber.tasks" not in edges["django_push.subscriber.models"]
    assert cycle(edges) == []


def test_the_cycle_finder_finds_one():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set()}) == []


def test_the_hub_has_no_import_circle():
    assert cycle(graph("django_push.hub")) == []


def test_metrics_never_reach_up_into_the_hub():
    everything = graph("django_push")
    upward = {
        (name, target)
        for name, targets in everything.items()
        if name.startswith("django_push.metrics")
        for target in targets
        if target.startswith("django_push.hub")
    }
    assert upward == set()


def test_only_the_hub_tasks_module_enqueues():
    hub = PACKAGE / "hub"
    enqueuing = {
        module_name(path)
        for path in hub.rglob("*.py")
        if "django_push.tasks"
        in imports_of(path, {"django_push.tasks", "django_push.tasks.enqueue"})
        and "enqueue" in path.read_text()
    }
    assert enqueuing == {"django_push.hub.tasks"}
