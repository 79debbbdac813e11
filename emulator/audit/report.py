"""The audit's report in three shapes: a verdict table for people, JSON and JUnit XML for CI."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

MARKS = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}


def table(report: dict[str, Any]) -> str:
    """One line per case (verdict, id, what happened), the fix under each failure or warning."""
    width = max(len(c["id"]) for c in report["cases"])
    lines = []
    for case in report["cases"]:
        lines.append(f"{MARKS[case['verdict']]:4}  {case['id']:{width}}  {case['observed']}"
                     + (f"  (expected: {case['expected']})" if case["verdict"] in ("fail", "warn") else ""))
        if case.get("fix") and case["verdict"] in ("fail", "warn"):
            lines.append(f"{'':4}  {'':{width}}  fix: {case['fix']}")
    s = report["summary"]
    lines.append(f"{s['passed']} passed, {s['failed']} failed, {s['warned']} warned, {s['skipped']} skipped "
                 f"(API down policy: {s['api_down_policy']}; degraded policy: {s['degraded_policy']})")
    return "\n".join(lines)


def junit(report: dict[str, Any]) -> str:
    """JUnit XML: one testcase per case; fail is a failure, skip is skipped, warn passes with a note."""
    s = report["summary"]
    suite = ET.Element("testsuite", name="captchala-emulator audit", tests=str(s["total"]),
                       failures=str(s["failed"]), errors="0", skipped=str(s["skipped"]))
    for case in report["cases"]:
        node = ET.SubElement(suite, "testcase", classname="captchala_audit", name=case["id"])
        detail = f"expected: {case['expected']}\nobserved: {case['observed']}\nfix: {case['fix']}"
        if case["verdict"] == "fail":
            ET.SubElement(node, "failure", message=case["observed"]).text = detail
        elif case["verdict"] == "skip":
            ET.SubElement(node, "skipped", message=case["observed"])
        elif case["verdict"] == "warn":
            ET.SubElement(node, "system-out").text = "warning: " + detail
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def write(path: str | Path, text: str) -> None:
    Path(path).write_text(text + ("" if text.endswith("\n") else "\n"), encoding="utf-8")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2)
