"""A service's `deploy` section -> Deploy: mode, replicas, placement, update/rollback pacing, restarts, resources.

Defaults are Swarm's (moby/swarmkit api/defaults/service.go: restart on any exit after 5s; updates one replica at
a time, pause on failure, monitor 5s, stop-first; rollback likewise). Placement constraints are parsed into
(attribute, op, value) so the placement code matches them without parsing text. Pure.
"""

from __future__ import annotations

import re

from node.manifest.errors import ManifestError, ManifestWarning, child, show
from node.manifest.fields import Notes, as_choice, as_int, as_list, as_number, as_str, read_object
from node.manifest.keys import DEPLOY, LIMITS, PLACEMENT, PREFERENCE, RESERVATIONS, RESOURCES, RESTART, UPDATE, KeyTable
from node.manifest.limits import (
    MAX_ATTEMPTS,
    MAX_CONSTRAINTS,
    MAX_CPUS,
    MAX_LABEL_CHARS,
    MAX_MEMORY,
    MAX_PER_NODE,
    MAX_PREFERENCES,
    MAX_REPLICAS,
    MIN_CPUS,
    MIN_MEMORY_LIMIT,
)
from node.manifest.model import (
    GLOBAL,
    LABEL_PREFIX,
    REPLICATED,
    Constraint,
    Deploy,
    Placement,
    Resources,
    ResourceSet,
    RestartPolicy,
    UpdateConfig,
)
from node.manifest.units import format_bytes, parse_bytes, read_duration_s

LABEL_KEY = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
"""What a label key may be, wherever a label is named (spread, constraints, `shoal node label`)."""
_CPUS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,20})?")  # as repr(float) writes them, up to 17 digits
_ATTRIBUTES = "node.id, node.name, node.labels.<key>"


def read_deploy(value: object, field: str, notes: Notes) -> Deploy:
    keys = read_object(value, field, DEPLOY, notes, null_ok=True)  # absent, or `deploy:` (Compose allows null)
    at = {key: child(field, key) for key in DEPLOY.supported}
    mode = as_choice(keys.get("mode", REPLICATED), at["mode"], (REPLICATED, GLOBAL))
    if mode == GLOBAL and "replicas" in keys:
        raise ManifestError(at["replicas"], keys["replicas"], "is for mode: replicated; a global service "
                                                              "runs one replica on every eligible node: remove it")
    return Deploy(
        mode=mode,
        replicas=as_int(keys.get("replicas", 1), at["replicas"], 0, MAX_REPLICAS),
        placement=read_placement(keys.get("placement", {}), at["placement"], notes, mode),
        update_config=read_update(keys.get("update_config", {}), at["update_config"], notes, rollback=False),
        rollback_config=read_update(keys.get("rollback_config", {}), at["rollback_config"], notes, rollback=True),
        restart_policy=read_restart(keys.get("restart_policy", {}), at["restart_policy"], notes),
        resources=read_resources(keys.get("resources", {}), at["resources"], notes),
    )


def read_placement(value: object, field: str, notes: Notes, mode: str) -> Placement:
    keys = read_object(value, field, PLACEMENT, notes)
    constraints = as_list(keys.get("constraints", []), child(field, "constraints"), max_items=MAX_CONSTRAINTS)
    preferences = as_list(keys.get("preferences", []), child(field, "preferences"), max_items=MAX_PREFERENCES)
    spread = [_spread(item, child(child(field, "preferences"), i), notes) for i, item in enumerate(preferences)]
    if len(set(spread)) != len(spread):
        raise ManifestError(child(field, "preferences"), preferences, "spreads over the same label twice")
    per_node = as_int(keys.get("max_replicas_per_node", 0), child(field, "max_replicas_per_node"), 0, MAX_PER_NODE)
    if per_node and mode == GLOBAL:
        raise ManifestError(child(field, "max_replicas_per_node"), per_node,
                            "is for mode: replicated; a global service runs one replica per node already")
    return Placement(
        constraints=tuple(sorted({_constraint(c, child(child(field, "constraints"), i))
                                  for i, c in enumerate(constraints)}, key=str)),
        spread=tuple(spread),
        max_replicas_per_node=per_node,
    )


def _constraint(value: object, field: str) -> Constraint:
    """'node.labels.disk == ssd' -> Constraint("node.labels.disk", "==", "ssd")."""
    text = as_str(value, field, max_chars=2 * MAX_LABEL_CHARS + 32, what="a constraint 'ATTRIBUTE ==|!= VALUE'")
    found = [op for op in ("==", "!=") if op in text]
    if len(found) != 1 or text.count(found[0]) != 1:
        raise ManifestError(field, value, f"{show(text)} is not 'ATTRIBUTE == VALUE' or 'ATTRIBUTE != VALUE', e.g. "
                                          "'node.labels.disk == ssd'")
    attribute, value_text = (part.strip() for part in text.split(found[0]))
    label = attribute.removeprefix(LABEL_PREFIX) if attribute.startswith(LABEL_PREFIX) else None
    if label is not None:
        _label_key(label, field)
    elif attribute not in ("node.id", "node.name"):
        hint = " (Shoal names nodes itself: use node.name)" if attribute == "node.hostname" else ""
        raise ManifestError(field, value, f"{show(attribute)} is not an attribute Shoal can match{hint}; "
                                          f"allowed: {_ATTRIBUTES}")
    if not value_text or len(value_text) > MAX_LABEL_CHARS or not value_text.isprintable():
        raise ManifestError(field, value, f"the value {show(value_text)} must be 1 to {MAX_LABEL_CHARS} "
                                          "printable characters")
    return Constraint(attribute, found[0], value_text)


def _spread(value: object, field: str, notes: Notes) -> str:
    keys = read_object(value, field, PREFERENCE, notes)
    target = as_str(keys.get("spread"), child(field, "spread"), max_chars=MAX_LABEL_CHARS + len(LABEL_PREFIX),
                    what="a label to spread over: spread: node.labels.<key>")
    if not target.startswith(LABEL_PREFIX):
        raise ManifestError(child(field, "spread"), target, f"{show(target)} is not node.labels.<key>; Shoal spreads "
                                                            "over node labels only")
    return _label_key(target.removeprefix(LABEL_PREFIX), child(field, "spread"))


def _label_key(key: str, field: str) -> str:
    return as_str(key, field, max_chars=MAX_LABEL_CHARS, pattern=LABEL_KEY,
                  what="a label key (letters, digits, '.', '-', '_')")


def read_update(value: object, field: str, notes: Notes, *, rollback: bool) -> UpdateConfig:
    """update_config, or rollback_config (which cannot itself roll back)."""
    keys = read_object(value, field, UPDATE, notes)
    default = UpdateConfig()
    actions = ("pause", "continue") if rollback else ("pause", "continue", "rollback")
    return UpdateConfig(
        parallelism=as_int(keys.get("parallelism", default.parallelism), child(field, "parallelism"), 0,
                           MAX_REPLICAS),
        delay_s=read_duration_s(keys, "delay", field, default.delay_s),
        failure_action=as_choice(keys.get("failure_action", default.failure_action), child(field, "failure_action"),
                                 actions),
        monitor_s=read_duration_s(keys, "monitor", field, default.monitor_s),
        max_failure_ratio=as_number(keys.get("max_failure_ratio", default.max_failure_ratio),
                                    child(field, "max_failure_ratio"), 0.0, 1.0),
        order=as_choice(keys.get("order", default.order), child(field, "order"), ("stop-first", "start-first")),
    )


def read_restart(value: object, field: str, notes: Notes) -> RestartPolicy:
    keys = read_object(value, field, RESTART, notes)
    default = RestartPolicy()
    return RestartPolicy(
        condition=as_choice(keys.get("condition", default.condition), child(field, "condition"),
                            ("none", "on-failure", "any")),
        delay_s=read_duration_s(keys, "delay", field, default.delay_s),
        max_attempts=as_int(keys.get("max_attempts", default.max_attempts), child(field, "max_attempts"), 0,
                            MAX_ATTEMPTS),
        window_s=read_duration_s(keys, "window", field, default.window_s),
    )


def read_resources(value: object, field: str, notes: Notes) -> Resources:
    keys = read_object(value, field, RESOURCES, notes)
    limits = _resource_set(keys.get("limits", {}), child(field, "limits"), notes, LIMITS, MIN_MEMORY_LIMIT)
    reservations = _resource_set(keys.get("reservations", {}), child(field, "reservations"), notes, RESERVATIONS, 1)
    lim, res, at = limits, reservations, child(field, "reservations")
    if lim.cpus is not None and res.cpus is not None and res.cpus > lim.cpus:
        raise ManifestError(child(at, "cpus"), res.cpus, f"reserves {res.cpus:g} CPUs but limits.cpus is "
                                                         f"{lim.cpus:g}; a reservation cannot exceed the limit")
    if lim.memory_bytes is not None and res.memory_bytes is not None and res.memory_bytes > lim.memory_bytes:
        raise ManifestError(child(at, "memory"), res.memory_bytes, f"reserves {format_bytes(res.memory_bytes)} but "
                            f"limits.memory is {format_bytes(lim.memory_bytes)}; a reservation cannot exceed the limit")
    if notes is not None and (res.cpus is not None or res.memory_bytes is not None):
        # Kept in the spec (a later placement may count them), but nothing uses them yet: say so, never ignore
        # silently (SPEC.md).
        notes.append(ManifestWarning(at, "not used yet: placement does not count reserved resources and containers "
                                         "get no reservation; limits are applied"))
    return Resources(limits, reservations)


def _resource_set(value: object, field: str, notes: Notes, table: KeyTable, min_memory: int) -> ResourceSet:
    keys = read_object(value, field, table, notes)
    cpus = keys.get("cpus")
    if isinstance(cpus, str) and _CPUS.fullmatch(cpus):
        cpus = float(cpus)  # Compose writes cpus as a string ("0.5") or a number
    return ResourceSet(
        cpus=as_number(cpus, child(field, "cpus"), MIN_CPUS, MAX_CPUS) if "cpus" in keys else None,
        memory_bytes=parse_bytes(keys["memory"], child(field, "memory"), min_bytes=min_memory, max_bytes=MAX_MEMORY)
        if "memory" in keys else None,
    )
