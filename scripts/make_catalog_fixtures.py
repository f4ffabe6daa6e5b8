"""Dev-only: record the (name, expression) lists Qlib 0.9.7's loaders generate, for the catalog's tests.

Run with a Python that has pyqlib, or point it at Qlib's source (a checkout or a bare git directory: only
``qlib/contrib/data/loader.py`` and ``handler.py`` are read, with pyqlib's base classes stubbed):

    /work/qlibenv/bin/python scripts/make_catalog_fixtures.py
    python scripts/make_catalog_fixtures.py --qlib-git /work/.mirror/microsoft+qlib/repo

It calls ``Alpha158DL.get_feature_config`` for the loader's default config and a few knob combinations
(windows, include, exclude, price / volume groups), ``Alpha360DL.get_feature_config`` and reads the handlers'
label expression, and writes them to tests/fixtures/features/qlib_loader_configs.json. The project itself is
not imported.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import types
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "features" / "qlib_loader_configs.json"

ALPHA158_CONFIGS = {
    "loader_default": None,  # get_feature_config() without arguments: the Alpha158 handler's config
    "handler_config": {
        "kbar": {},
        "price": {"windows": [0], "feature": ["OPEN", "HIGH", "LOW", "VWAP"]},
        "rolling": {},
    },
    "kbar_only": {"kbar": {}},
    "price_defaults": {"price": {}},
    "volume_windows": {"volume": {"windows": [0, 1, 3]}},
    "rolling_windows": {"rolling": {"windows": [3, 7]}},
    "rolling_include": {"rolling": {"windows": [5, 20], "include": ["ROC", "CORR", "WVMA", "MIN", "LOW"]}},
    "rolling_exclude": {"rolling": {"exclude": ["RANK", "IMAX", "VSUMD"]}},
    "everything": {
        "kbar": {},
        "price": {"windows": [0, 1], "feature": ["CLOSE", "VWAP"]},
        "volume": {},
        "rolling": {"windows": [10]},
    },
}


def _pairs(fields_names: tuple[list[str], list[str]]) -> list[list[str]]:
    fields, names = fields_names
    return [[n, f] for f, n in zip(fields, names, strict=True)]


def _source(args: argparse.Namespace, path: str) -> str:
    if args.qlib_git:
        cmd = ["git", "-C", args.qlib_git, "show", f"HEAD:{path}"]
        return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return (Path(args.qlib_src) / path).read_text()


def _loaders(args: argparse.Namespace):
    """Alpha158DL / Alpha360DL and the label config, from pyqlib or from Qlib's source text."""
    if not (args.qlib_git or args.qlib_src):
        from qlib.contrib.data.handler import Alpha158
        from qlib.contrib.data.loader import Alpha158DL, Alpha360DL

        return Alpha158DL, Alpha360DL, Alpha158.get_label_config(None)
    stub = types.ModuleType("qlib.data.dataset.loader")
    stub.QlibDataLoader = type("QlibDataLoader", (), {})
    for name in ("qlib", "qlib.data", "qlib.data.dataset"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["qlib.data.dataset.loader"] = stub
    namespace: dict = {}
    exec(compile(_source(args, "qlib/contrib/data/loader.py"), "loader.py", "exec"), namespace)  # noqa: S102
    # The label: the literal `return [...], [...]` of Alpha158.get_label_config in handler.py.
    tree = ast.parse(_source(args, "qlib/contrib/data/handler.py"))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Alpha158")
    fn = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "get_label_config")
    label = ast.literal_eval(fn.body[-1].value)
    return namespace["Alpha158DL"], namespace["Alpha360DL"], label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--qlib-git", help="a git directory of Qlib's repository (reads HEAD)")
    parser.add_argument("--qlib-src", help="a checkout of Qlib's repository")
    args = parser.parse_args()
    alpha158_dl, alpha360_dl, label = _loaders(args)
    out: dict = {"alpha158": {}}
    for key, config in ALPHA158_CONFIGS.items():
        generated = alpha158_dl.get_feature_config() if config is None else alpha158_dl.get_feature_config(config)
        out["alpha158"][key] = {"config": config, "columns": _pairs(generated)}
    out["alpha360"] = _pairs(alpha360_dl.get_feature_config())
    out["label"] = _pairs(tuple(label))
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
