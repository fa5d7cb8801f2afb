"""Testing helpers shipped with pushsim: a real simulator from a test, and the pytest plugin.

- :mod:`simulator.testing.handle`: :class:`SimulatorHandle`, ``running_simulator``,
  ``simulator_process``;
- :mod:`simulator.testing.plugin`: the ``pushsim`` pytest fixtures (entry point ``pytest11``);
- :mod:`simulator.testing.fcm`: FCM assertions and ``point_firebase_admin``.
"""

from simulator.testing.handle import (
    SimulatorHandle,
    apns_provider_token,
    running_simulator,
    simulator_process,
)

__all__ = ["SimulatorHandle", "apns_provider_token", "running_simulator", "simulator_process"]
