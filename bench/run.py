"""Run benchmarks and print median figures: `python bench/run.py [name ...] [--repeat N]`.

A benchmark is a module `bench/bench_<name>.py` with `run(args) -> dict` (metric -> one value or a
list of samples, one per repetition) and, optionally, `add_arguments(parser)`. With no name, every
benchmark runs. The machine is small and shared, so lists are summarised by their median.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def available() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in BENCH_DIR.glob("bench_*.py"))


def load(name: str):
    path = BENCH_DIR / f"bench_{name}.py"
    if not path.exists():
        raise SystemExit(f"Unknown benchmark {name!r}; available: {', '.join(available())}")
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def machine() -> str:
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line), ""
        )
    return f"{os.cpu_count()} cores {model}, {memory:.0f} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def summarise(value):
    if isinstance(value, list) and value and all(isinstance(item, int | float) for item in value):
        return {"median": statistics.median(value), "min": min(value), "max": max(value), "samples": value}
    return value


def _parser(description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(available())})")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per benchmark (median reported)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    return parser


def _module_args(name: str, module, argv: list[str], names: list[str]):
    """Each benchmark reads its own options (two may define the same one with other defaults)."""
    parser = _parser()
    if hasattr(module, "add_arguments"):
        module.add_arguments(parser)
    args, unknown = parser.parse_known_args(argv)
    args.names = names
    return args, unknown


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A benchmark's name, not an option's value (`--worker-class gthread`).
    names = [arg for arg in argv if not arg.startswith("-") and arg in available()]
    modules = {name: load(name) for name in (names or available())}
    if "-h" in argv or "--help" in argv:
        print(_parser(__doc__).format_help())
        for name, module in modules.items():
            if hasattr(module, "add_arguments"):
                parser = argparse.ArgumentParser(prog=f"run.py {name}", add_help=False)
                module.add_arguments(parser)
                print(parser.format_help())
        return 0
    parsed, unknown_to_all = {}, None
    for name, module in modules.items():
        args, unknown = _module_args(name, module, argv, names)
        parsed[name] = args
        unknown_to_all = set(unknown) if unknown_to_all is None else unknown_to_all & set(unknown)
    stray = sorted(arg for arg in unknown_to_all or () if arg.startswith("-"))
    if stray:
        raise SystemExit(f"unknown options: {' '.join(stray)}")
    args = next(iter(parsed.values()))
    results = {"machine": machine()}
    print(f"# {results['machine']}", flush=True)
    for name, module in modules.items():
        print(f"## {name}", flush=True)
        figures = {key: summarise(value) for key, value in module.run(parsed[name]).items()}
        results[name] = figures
        if not args.json:
            for key, value in figures.items():
                if isinstance(value, dict) and "median" in value:
                    samples = ", ".join(f"{sample:.3g}" for sample in value["samples"])
                    print(f"{key}: median {value['median']:.4g} (samples {samples})")
                else:
                    print(f"{key}: {value}")
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
