"""``--profile``: sample the API server with py-spy during each scenario and summarise where the
time goes (self time per function, and inclusive time per area of the code).

py-spy is not a project dependency: ``.venv/bin/pip install py-spy`` to use it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

RATE = 250


def py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    exe = py_spy()
    if exe is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    cmd = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    cmd += ["--rate", str(RATE), "--format", "raw", "--nonblocking", "-o", str(out)]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


# Areas, checked in order against the file of each frame (inclusive time: a sample counts once).
_AREAS = [
    ("city_os.store (SQL, row decode)", "city_os/store/"),
    ("city_os.ngsild (parse, expand, render)", "city_os/ngsild/"),
    ("city_os.events (change event)", "city_os/events/"),
    ("city_os.core", "city_os/core/"),
    ("city_os.api", "city_os/api/"),
    ("asyncpg", "asyncpg/"),
    ("aiohttp", "aiohttp/"),
    ("copy.deepcopy", "copy.py"),
]


def _frame(raw: str) -> tuple[str, str]:
    """'func (path/to/file.py:12)' -> ('func (to/file.py)', path): self time per function."""
    name, _, where = raw.rpartition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    short = "/".join(path.split("/")[-2:])
    return f"{name} ({short})", path


def summarise(out: Path, top: int = 10) -> list[str]:
    if not out.exists():
        return ["  (no profile written; is ptrace allowed?)"]
    self_time: Counter[str] = Counter()
    areas: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = [_frame(f) for f in stack.split(";") if " (" in f]
        if not frames:
            continue
        self_time[frames[-1][0]] += n
        paths = [p for _, p in frames]
        for area, marker in _AREAS:
            if any(marker in p for p in paths):
                areas[area] += n
    if not total:
        return ["  (no samples)"]
    lines = [f"  {total} busy samples at {RATE}/s; inclusive share by area:"]
    lines += [f"    {100 * n / total:5.1f}%  {area}" for area, n in areas.most_common()]
    lines.append("  top self time:")
    lines += [f"    {100 * n / total:5.1f}%  {fn}" for fn, n in self_time.most_common(top)]
    return lines
