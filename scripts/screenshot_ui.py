"""Screenshot of the Dagster UI's global asset graph, for the docs (dev only; not part of the tests).

Starts the webserver on a free loopback port against the current configuration (the PIPELINE_* variables
and the persistent instance, DAGSTER_HOME or .dagster_home in the repo, so the graph shows what `make run`
materialized), loads the asset lineage page in headless Chromium, writes a PNG and stops the server.
Only the webserver runs, no daemon: taking a picture never launches a run or ticks a schedule.

    .venv/bin/python scripts/screenshot_ui.py [--out docs/asset_graph.png] [--page /asset-groups]

Needs Chromium (Debian/Ubuntu: `apt-get install -y chromium`); pass --chromium PATH for another binary.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from pipeline.instance import ensure_dagster_home  # noqa: E402
from tests.e2e.graphql_client import dagster_dev  # noqa: E402

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# The global asset lineage page of Dagster 1.13 (every group, every asset).
ASSET_GRAPH_PAGE = "/asset-groups"
# The browser reaches the loopback server under this name: the UI shows its community sign-up dialog only to
# pages served from 127.0.0.1 / localhost origins, and a fresh browser profile has never dismissed it.
BROWSER_HOST = "dagster-ui"


def expanded_groups_query(groups: list[str]) -> str:
    """Query string that opens every asset group on the lineage page (they start collapsed): the UI keeps
    open groups in ``expanded``, as ``global@global:<group>`` (or ``<repo>@<location>:<group>`` when groups
    are split per code location)."""
    ids = [f"global@global:{g}" for g in groups]
    return "?" + urllib.parse.urlencode({"expanded": ",".join(ids)}, safe="@:,")


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def screenshot(chromium: str, url: str, out: Path, width: int, height: int, budget_ms: int) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--virtual-time-budget={budget_ms}",
            f"--host-resolver-rules=MAP {BROWSER_HOST} 127.0.0.1",
            f"--screenshot={out}",
            url,
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if result.returncode != 0 or not out.exists():
        raise SystemExit(f"chromium failed ({result.returncode}):\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "docs" / "asset_graph.png")
    parser.add_argument("--page", default=ASSET_GRAPH_PAGE, help="UI path to capture (default: the asset graph)")
    parser.add_argument("--chromium", help="Chromium/Chrome binary (default: found on PATH)")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1800, help="tall enough for the whole graph")
    parser.add_argument("--budget-ms", type=int, default=20000, help="Chromium's virtual time budget")
    parser.add_argument("--settle-s", type=float, default=3.0, help="wait after the code location loaded")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(
            "Chromium not found. Install it (Debian/Ubuntu: `sudo apt-get install -y chromium`) "
            "or pass --chromium /path/to/chrome.",
            file=sys.stderr,
        )
        return 2
    home = ensure_dagster_home()
    env = dict(os.environ, DAGSTER_HOME=str(home))
    with tempfile.TemporaryDirectory(prefix="screenshot-ui-") as tmp:
        log = Path(tmp) / "webserver.log"
        with dagster_dev(REPO_ROOT, env, log, with_daemon=False) as (client, repo):
            print(f"webserver ready at {client.base_url} ({repo.location}); instance {home}")
            time.sleep(args.settle_s)
            page = args.page
            if page == ASSET_GRAPH_PAGE:
                groups = sorted({n["groupName"] for n in client.asset_nodes() if n["groupName"]})
                page += expanded_groups_query(groups)
            url = client.base_url.replace("127.0.0.1", BROWSER_HOST) + page
            print(f"capturing {url}")
            screenshot(chromium, url, args.out, args.width, args.height, args.budget_ms)
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
