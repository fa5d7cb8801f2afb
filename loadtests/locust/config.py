"""The configuration ``pushsim run`` hands its Locust processes, in one JSON file.

The harness writes it (:func:`write`) and points :data:`CONFIG_ENV` at it; the locustfile
reads it (:func:`read`). Neither imports the other: this module is the contract between
them, and it imports nothing that would pull gevent into the harness or asyncio into Locust.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtests.scenario.model import Scenario

CONFIG_ENV = "PUSHSIM_LOCUST_CONFIG"


def write(
    path: Path,
    sc: Scenario,
    *,
    users: list[dict[str, Any]],
    topic_devices: dict[str, list[str]],
    run_id: str,
    seed: int,
    control: str,
    log_dir: Path,
    senders: list[str] | None = None,
) -> Path:
    """Write the run's Locust configuration: the population, URLs (``senders``: every
    instance of the sender, when several share the work) and the scenario's load, traffic,
    device behaviour and the sender's API shape."""
    target = sc.target
    cfg = {
        "senders": list(senders or []),
        "topic_devices": topic_devices,
        "run_id": run_id,
        "seed": seed,
        "control": control,
        "log_dir": str(log_dir),
        "users": users,
        "scenario": {
            "name": sc.name,
            "duration": sc.duration,
            "load": asdict(sc.load),
            "traffic": asdict(sc.traffic),
            "devices": asdict(sc.devices),
            "target": {
                "register": asdict(target.register),
                "notify": asdict(target.notify),
                "notify_batch": asdict(target.notify_batch) if target.notify_batch else None,
                "batch_results": target.batch_results,
                "accepted_status": list(target.accepted_status),
                "id_field": target.id_field,
            },
        },
    }
    path.write_text(json.dumps(cfg, indent=1), encoding="utf-8")
    return path


def read() -> dict[str, Any]:
    """The configuration :data:`CONFIG_ENV` names; {} when it names none."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return {}
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))
