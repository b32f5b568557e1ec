"""Does `pip install zoo` resolve, from wheels alone, where zoo's users are?

For each platform below, pip resolves the base dependencies of pyproject.toml (and their own
dependencies) as that platform's pip would, without installing anything (`--dry-run`, wheel
metadata only), and prints one line per platform: what would be installed, or what has no
wheel there. Extras are checked with --extra NAME.

    python tools/wheels.py                 # the base install
    python tools/wheels.py --extra micro   # the base install with [micro]

pip matches a manylinux tag exactly, so each Linux platform lists the glibc versions a current
distribution accepts (2.17 to 2.39), as that machine's pip would.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = "3.11"
_GLIBC = range(17, 40)
PLATFORMS = {
    "Linux x86-64": [f"manylinux_2_{n}_x86_64" for n in _GLIBC] + ["manylinux2014_x86_64"],
    "Linux aarch64": [f"manylinux_2_{n}_aarch64" for n in _GLIBC] + ["manylinux2014_aarch64"],
    "macOS arm64": [f"macosx_{v}_0_arm64" for v in range(11, 16)],
    "macOS x86-64": [f"macosx_{v}_x86_64" for v in ("10_15", "11_0", "12_0", "13_0", "14_0", "15_0")],
    "Windows x86-64": ["win_amd64"],
}


def requirements(extras: list[str]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += [r for r in project["optional-dependencies"][extra] if not r.startswith(project["name"] + "[")]
    return wanted


def resolve(platform_tags: list[str], wanted: list[str]) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as target:
        command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                   "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
                   "--target", target, *(["--pre"] if any(".dev" in r for r in wanted) else []),
                   *(f"--platform={tag}" for tag in platform_tags), *wanted]
        result = subprocess.run([*command, "--report", "-"], capture_output=True, text=True)
    if result.returncode == 0:
        installed = json.loads(result.stdout)["install"]
        return True, f"{len(installed)} wheels"
    missing = re.findall(r"satisfies the requirement ([^\s]+)", result.stderr)
    return False, "no wheel for " + (", ".join(dict.fromkeys(missing)) or result.stderr.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", action="append", default=[], help="an extra to add (micro, test, ...)")
    args = parser.parse_args()
    wanted = requirements(args.extra)
    print(f"Python {PYTHON}, {len(wanted)} requirements: {' '.join(wanted)}")
    failed = 0
    for name, tags in PLATFORMS.items():
        ok, what = resolve(tags, wanted)
        failed += not ok
        print(f"  {name:<15} {'resolves' if ok else 'FAILS   '}  {what}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
