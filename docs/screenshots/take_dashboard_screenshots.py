"""Re-take the README's dashboard screenshots: one 1280x800 PNG per page, from the real Streamlit
server and headless Chromium (the browser tests' helpers, tests/e2e_support.py).

    .venv/bin/python docs/screenshots/take_dashboard_screenshots.py            # a fresh demo in a tmp dir
    .venv/bin/python docs/screenshots/take_dashboard_screenshots.py --lake data/lake --dagster-home .dagster_home
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from e2e_support import CHROMIUM, CHROMIUM_ARGS, Dashboard, open_dashboard_page  # noqa: E402

# Neighbours in universe order (one Dagster run), Layer 1 and Meme coins.
DEMO_SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,AVAXUSDT,ADAUSDT,DOTUSDT,DOGEUSDT,SHIBUSDT,FLOKIUSDT,PEPEUSDT,CKBUSDT"
# url path -> (query string, charts to wait for); the overview is the default page, at /.
PAGES = {
    "": ("", 3),
    "price": ("?symbols=BTCUSDT", 1),
    "correlations": ("?symbols=BTCUSDT,ETHUSDT", 2),
    "sentiment": ("", 1),
    "predictions": ("", 1),
    "quality": ("", 1),
}


def demo(root: Path, days: int) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAKE_")} | {
        "DAGSTER_HOME": str(root / "home")
    }
    subprocess.run(
        [
            sys.executable,
            "-m",
            "cryptolake_assets.cli",
            "demo",
            "--days",
            str(days),
            "--symbols",
            DEMO_SYMBOLS,
            "--duckdb",
            str(root / "demo.duckdb"),
        ],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", type=Path, help="an existing lake (default: run a demo into a tmp dir)")
    parser.add_argument("--dagster-home", type=Path, help="the instance the lake's runs were recorded in")
    parser.add_argument(
        "--days", type=int, default=60, help="days of the demo (default 60: the models score the last weeks)"
    )
    parser.add_argument("--out", type=Path, default=HERE, help="where the PNGs go (default docs/screenshots)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if args.lake is None:
            demo(root, args.days)
        lake = (args.lake or root / "lake").resolve()
        home = (args.dagster_home or root / "home").resolve()
        server = Dashboard(lake=lake, home=home).start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name, (query, plots) in PAGES.items():
                    open_dashboard_page(page, f"{server.url}/{name}{query}", plots)
                    page.wait_for_timeout(1000)  # let Plotly finish its transitions
                    path = args.out / f"dashboard-{name or 'overview'}.png"
                    page.screenshot(path=str(path))
                    print(path)
                browser.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
