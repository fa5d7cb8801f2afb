"""junit.xml for CI: one test case per objective (a failure says what was measured and what
was required), or one error case when the run could not be carried out."""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ET

from loadtests.judge.objectives import Verdict, fmt


def junit_xml(name: str, verdicts: list[Verdict], doc: dict[str, Any] | None = None) -> str:
    failures = sum(1 for v in verdicts if not v.passed)
    duration = 0.0
    if doc is not None:
        info = doc.get("run", {})
        duration = max(
            0.0, float(info.get("ended_at", 0.0)) - float(info.get("load_started_at", 0.0))
        )
    suite = ET.Element(
        "testsuite",
        name=f"pushsim.{name}",
        tests=str(len(verdicts)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{duration:.3f}",
    )
    for v in verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"pushsim.{name}", name=v.name, time="0")
        measured = fmt(v.measured, v.unit)
        required = f"{v.op} {fmt(v.required, v.unit)}"
        if not v.passed:
            fail = ET.SubElement(
                case,
                "failure",
                message=f"{v.measure}: measured {measured}, required {required}",
                type="ObjectiveFailed",
            )
            fail.text = f"{v.description}\n{v.detail}"
        out = ET.SubElement(case, "system-out")
        out.text = f"{v.measure} = {measured} (required {required}): {v.description}"
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )


def junit_error(name: str, message: str) -> str:
    suite = ET.Element("testsuite", name=f"pushsim.{name}", tests="1", failures="0", errors="1")
    case = ET.SubElement(suite, "testcase", classname=f"pushsim.{name}", name="run")
    err = ET.SubElement(
        case,
        "error",
        message=message.splitlines()[0][:500] if message else "error",
        type="HarnessError",
    )
    err.text = message
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
