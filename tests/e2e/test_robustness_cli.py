"""Invalid flags and files for ``pushsim simulator`` / ``sender`` / ``run``, as child
processes: each exits non-zero with one clear line naming the flag, file or field and what
was expected, never a traceback. The cases run concurrently to keep the file quick."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from simulator.testing.handle import running_simulator

pytestmark = pytest.mark.timeout(90)

PUSHSIM = str(Path(sys.executable).with_name("pushsim"))


@dataclass
class Case:
    name: str
    args: list[str]
    mentions: list[str]  # each must appear in the error line


@pytest.fixture(scope="module")
def simdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A simulator state dir with endpoints.json and credentials (the simulator runs)."""
    state = tmp_path_factory.mktemp("robust-cli") / "state"
    with running_simulator(state, tls=False) as handle:
        yield handle.state_dir


def files(tmp: Path) -> dict[str, Path]:
    out = {
        "yaml_syntax": "name: x\nload: [unclosed\n  users: 3\n",
        "yaml_list": "- 1\n- 2\n",
        "yaml_types": "name: t\nduration: soon\nload:\n  users: many\n",
        "yaml_deep": "a: " + "[" * 3000 + "]" * 3000 + "\n",
        "yaml_binary": "\udcff\udcfe\x00\x01",
        "faults_bad": "faults:\n  - kind: outage\n    provider: carrier-pigeon\n",
        "faults_types": "faults:\n  - kind: latency\n    at: yesterday\n",
        "json_bad": "{not json",
        "empty": "",
    }
    paths: dict[str, Path] = {}
    for name, text in out.items():
        suffix = ".json" if name.startswith("json") else ".yaml"
        p = tmp / f"{name}{suffix}"
        p.write_bytes(text.encode("utf-8", "surrogateescape"))
        paths[name] = p
    adir = tmp / "a_directory.yaml"
    adir.mkdir()
    paths["dir"] = adir
    afile = tmp / "plain-file"
    afile.write_text("x")
    paths["file"] = afile
    bad_endpoints = tmp / "bad-sim"
    bad_endpoints.mkdir()
    (bad_endpoints / "endpoints.json").write_text("{broken")
    paths["bad_sim"] = bad_endpoints
    return paths


def cases(tmp: Path, simdir: Path) -> list[Case]:
    f = files(tmp)
    sd = str(tmp / "sd")
    sim = ["simulator", "--state-dir", sd]
    snd = ["sender", "--simulator", str(simdir)]
    return [
        Case("sim port negative", [*sim, "--port", "-1"], ["--port", "0 or 1-65529"]),
        Case("sim port huge", [*sim, "--port", "99999999999"], ["--port"]),
        Case("sim port text", [*sim, "--port", "eighty"], ["--port"]),
        Case("sim host public", [*sim, "--host", "0.0.0.0"], ["--host", "loopback"]),
        Case("sim host remote", [*sim, "--host", "8.8.8.8"], ["--host", "loopback"]),
        Case("sim host garbage", [*sim, "--host", "not a host!"], ["--host"]),
        Case("sim seed text", [*sim, "--seed", "x"], ["--seed"]),
        Case("sim workers 0", [*sim, "--workers", "0"], ["--workers"]),
        Case("sim scenario missing", [*sim, "--scenario", str(tmp / "nope.yaml")], ["--scenario"]),
        Case("sim scenario dir", [*sim, "--scenario", str(f["dir"])], ["--scenario"]),
        Case(
            "sim scenario yaml syntax",
            [*sim, "--scenario", str(f["yaml_syntax"])],
            ["yaml_syntax.yaml"],
        ),
        Case(
            "sim scenario bad provider",
            [*sim, "--scenario", str(f["faults_bad"])],
            ["faults_bad.yaml", "provider"],
        ),
        Case(
            "sim scenario bad at",
            [*sim, "--scenario", str(f["faults_types"])],
            ["faults_types.yaml", "at"],
        ),
        Case("sim scenario deep", [*sim, "--scenario", str(f["yaml_deep"])], ["yaml_deep.yaml"]),
        Case(
            "sim scenario binary", [*sim, "--scenario", str(f["yaml_binary"])], ["yaml_binary.yaml"]
        ),
        Case("sim scenario json", [*sim, "--scenario", str(f["json_bad"])], ["json_bad.json"]),
        Case(
            "sim state-dir is a file", ["simulator", "--state-dir", str(f["file"])], ["--state-dir"]
        ),
        Case("sender port negative", [*snd, "--port", "-1"], ["--port"]),
        Case("sender port huge", [*snd, "--port", "70000"], ["--port"]),
        Case("sender host public", [*snd, "--host", "0.0.0.0"], ["--host", "loopback"]),
        Case("sender no simulator", ["sender", "--simulator", str(tmp / "nope")], ["--simulator"]),
        Case(
            "sender simulator is a file", ["sender", "--simulator", str(f["file"])], ["--simulator"]
        ),
        Case(
            "sender broken endpoints",
            ["sender", "--simulator", str(f["bad_sim"])],
            ["--simulator", "endpoints.json"],
        ),
        Case("sender db is a dir", [*snd, "--db", str(f["dir"])], ["--db"]),
        Case("sender deadline negative", [*snd, "--deadline", "-5"], ["--deadline"]),
        Case("sender deadline nan", [*snd, "--deadline", "nan"], ["--deadline"]),
        Case(
            "sender ready-file in missing dir",
            [*snd, "--ready-file", str(tmp / "no" / "such" / "ready.json")],
            ["--ready-file"],
        ),
        Case("run missing file", ["run", str(tmp / "nope.yaml"), "--check"], ["nope.yaml"]),
        Case("run directory", ["run", str(f["dir"]), "--check"], ["a_directory.yaml"]),
        Case("run yaml syntax", ["run", str(f["yaml_syntax"]), "--check"], ["yaml_syntax.yaml"]),
        Case("run yaml list", ["run", str(f["yaml_list"]), "--check"], ["yaml_list.yaml"]),
        Case("run wrong types", ["run", str(f["yaml_types"]), "--check"], ["yaml_types.yaml"]),
        Case("run deep yaml", ["run", str(f["yaml_deep"]), "--check"], ["yaml_deep.yaml"]),
        Case("run binary", ["run", str(f["yaml_binary"]), "--check"], ["yaml_binary.yaml"]),
        Case("run empty", ["run", str(f["empty"]), "--check"], ["empty.yaml"]),
        Case(
            "run unknown scenario name",
            ["run", "no-such-scenario", "--check"],
            ["no-such-scenario"],
        ),
        Case("run workers negative", ["run", "--workers", "-1"], ["--workers"]),
        Case("run target remote", ["run", "--target", "http://8.8.8.8:80"], ["--target"]),
        Case("run target garbage", ["run", "--target", "::::"], ["--target"]),
        Case(
            "run target without simulator",
            ["run", "--target", "http://127.0.0.1:1"],
            ["--simulator"],
        ),
    ]


def test_invalid_flags_and_files_get_one_clear_line(tmp_path: Path, simdir: Path) -> None:
    todo = cases(tmp_path, simdir)
    procs: list[tuple[Case, subprocess.Popen[str]]] = []
    failures: list[str] = []
    for i in range(0, len(todo), 8):  # eight at a time: bounded load on a small machine
        batch = [
            (
                c,
                subprocess.Popen(
                    [PUSHSIM, *c.args],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    errors="replace",
                ),
            )
            for c in todo[i : i + 8]
        ]
        for case, proc in batch:
            try:
                _out, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
                failures.append(f"{case.name}: still running after 10 s (accepted the input)")
                continue
            procs.append((case, proc))
            lines = [ln for ln in err.strip().splitlines() if ln.strip()]
            problem = None
            if proc.returncode == 0:
                problem = "exited 0"
            elif "Traceback" in err:
                problem = "traceback"
            elif len(lines) != 1 and not (
                # argparse prints its usage line before the error line
                len(lines) >= 2 and lines[0].startswith("usage:")
            ):
                problem = f"{len(lines)} lines"
            elif any(m not in lines[-1] for m in case.mentions):
                problem = f"does not mention {case.mentions}"
            if problem:
                failures.append(f"{case.name}: {problem}: rc={proc.returncode} {err[-600:]!r}")
    assert not failures, "\n".join(failures)
