"""Dependency audit for the test command: run pip-audit on the virtualenv and fail only
on a known vulnerability.

pip-audit asks a vulnerability service (PyPI's JSON API by default, or OSV). When the
service cannot be reached or does not know a package, pip-audit skips that package
and exits 0 or 1 depending on the case; this script reads its JSON instead: any
dependency with a non-empty ``vulns`` list fails the build (exit 1); skipped ones are
counted and printed, so an offline machine still passes and says plainly that it could
not audit. A pip-audit that does not run at all, or whose output is not JSON, is also
printed and not fatal (the audit is then "not done", which the output says).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def main() -> int:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [
        str(pip_audit),
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--local",
        "--skip-editable",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        print(f"pip-audit: not done ({type(err).__name__}); dependencies NOT audited")
        return 0
    try:
        report = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        print(f"pip-audit: exit {done.returncode}, no JSON; dependencies NOT audited")
        print(done.stderr.strip()[-2000:])
        return 0
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    skipped = [d for d in dependencies if d.get("skip_reason")]
    audited = len(dependencies) - len(skipped)
    print(
        f"pip-audit: {len(dependencies)} dependencies, {audited} audited, "
        f"{len(skipped)} skipped, {len(vulnerable)} with known vulnerabilities"
    )
    if skipped:
        print(
            f"  skipped (service unreachable or package unknown to it), e.g.: "
            f"{skipped[0].get('skip_reason', '')}"
        )
    for dep in vulnerable:
        ids = ", ".join(
            f"{v.get('id')} (fixed in {', '.join(v.get('fix_versions') or []) or 'no release'})"
            for v in dep["vulns"]
        )
        print(f"  VULNERABLE {dep.get('name')} {dep.get('version')}: {ids}")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
