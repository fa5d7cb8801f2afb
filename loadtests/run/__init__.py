"""Running a scenario end to end: :mod:`~loadtests.run.harness` sequences the parts --
:mod:`~loadtests.run.processes` (the simulator, the sender, Locust),
:mod:`~loadtests.run.population` (devices minted and registered),
:mod:`~loadtests.run.faults` (the fault plan armed and read back),
:mod:`~loadtests.run.truth` (ground truth read back from the simulator) and
:mod:`~loadtests.run.judging` (measures and objectives to verdicts).
"""

from __future__ import annotations


class HarnessError(RuntimeError):
    """The run could not be carried out (a part did not start, or died)."""
