"""`amity school import`: checking a file of N schools, and importing N schools with keys,
the key pool against a single process in the same run.

Run: python bench/school_import.py [--schools N] [--check-rows M] [--workers W]
     python bench/school_import.py --schools 10000     (the size of a ministry; ~40 min
                                                        on two cores)

Checking reads and validates every row without a node (protocol/school_rows and
school_row_checks) for a CSV and a JSONL file of M synthetic schools in many countries.
Importing runs the real command (`amity school import FILE.jsonl`) on a fresh node, once
with the key pool (`--workers W`, default one per core) and once with `--workers 1`
(keys made in the importing process), and prints schools per second and the ratio; before
that, the key pairs alone from the pool and from one process, alternating. An RSA-2048
key pair is most of each school's cost, so the ratio is bounded by the cores free.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nodes import amity, free_port, init_school

from amity.node.key_pool import KeyPool, default_workers
from amity.protocol.school_row_checks import check_rows
from amity.protocol.school_rows import decode_text, read_csv, read_jsonl

PLACES = [
    ("KE", "Africa/Nairobi", "sw"),
    ("MX", "America/Mexico_City", "es"),
    ("JP", "Asia/Tokyo", "ja"),
    ("DE", "Europe/Berlin", "de"),
    ("BR", "America/Sao_Paulo", "pt"),
    ("IN", "Asia/Kolkata", "hi"),
    ("FR", "Europe/Paris", "fr"),
    ("NZ", "Pacific/Auckland", "mi"),
]


def school(number: int) -> dict[str, Any]:
    """A synthetic school `number`, its country and languages cycling through PLACES."""
    country, zone, language = PLACES[number % len(PLACES)]
    return {
        "handle": f"school-{number:05d}",
        "name": f"School {number} of {country}",
        "country": country,
        "timezone": zone,
        "languages": {"instruction": [language], "learning": ["en"]},
        "ages": [9 + number % 4, 13 + number % 4],
        "subjects": ["science", "art"],
        "modes": ["async", "live"],
        "school_days": ["mon", "tue", "wed", "thu", "fri"],
        "school_hours": ["08:00", "14:00"],
        "capacity": 1 + number % 3,
    }


def jsonl_text(count: int) -> str:
    return "".join(json.dumps(school(n)) + "\n" for n in range(count))


def csv_text(count: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "handle",
            "name",
            "country",
            "timezone",
            "languages.instruction",
            "languages.learning",
            "ages",
            "subjects",
            "modes",
            "school_days",
            "school_hours",
            "capacity",
        ]
    )
    for n in range(count):
        s = school(n)
        writer.writerow(
            [
                s["handle"],
                s["name"],
                s["country"],
                s["timezone"],
                ";".join(s["languages"]["instruction"]),
                ";".join(s["languages"]["learning"]),
                f"{s['ages'][0]}-{s['ages'][1]}",
                ";".join(s["subjects"]),
                ";".join(s["modes"]),
                ";".join(s["school_days"]),
                "-".join(s["school_hours"]),
                str(s["capacity"]),
            ]
        )
    return out.getvalue()


def bench_check(rows: int) -> None:
    print(f"checking {rows:,} rows (read + validate, no node)")
    for label, text, reader in (
        ("CSV", csv_text(rows), read_csv),
        ("JSONL", jsonl_text(rows), read_jsonl),
    ):
        raw = text.encode()
        start = time.perf_counter()
        checked = check_rows(reader(decode_text(raw)), {})
        seconds = time.perf_counter() - start
        assert all(row.good for row in checked)
        print(
            f"  {label:<6}{len(raw) / 1e6:>7.1f} MB  {seconds:>7.2f} s  "
            f"{rows / seconds:>10,.0f} rows/s"
        )


def bench_import(directory: Path, label: str, schools: int, workers: int) -> float:
    """Seconds for `amity school import` of `schools` schools with `workers` key workers."""
    data = init_school(directory, label, free_port())
    source = directory / f"{label}.jsonl"
    source.write_text(jsonl_text(schools))
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "amity.cli",
            "school",
            "import",
            str(source),
            "--data",
            str(data),
            "--workers",
            str(workers),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - start
    listed = json.loads(amity("school", "list", "--json", "--data", str(data)))
    assert len(listed) == schools + 1, len(listed)
    open_start = time.perf_counter()
    amity("school", "list", "--data", str(data))
    opened = time.perf_counter() - open_start
    print(
        f"  {workers} worker(s){'':<4}{seconds:>8.1f} s  {schools / seconds:>7.1f} schools/s"
        f"   (`amity school list` afterwards: {opened:.2f} s)"
    )
    return seconds


def _burn(count: int) -> int:
    total = 0
    for number in range(count):
        total += number * number
    return total


def bench_parallelism(workers: int) -> None:
    """The same pure-Python work in 1 and in `workers` processes: how many cores this run
    really gets (other programs on the machine share them); the key pool cannot beat it."""
    seconds = {}
    for size in (1, workers):
        with ProcessPoolExecutor(size) as pool:
            start = time.perf_counter()
            list(pool.map(_burn, [2_000_000] * 4 * workers))
            seconds[size] = time.perf_counter() - start
    print(
        f"cores free for this run: {seconds[1] / seconds[workers]:.2f} "
        f"(the same work in {workers} processes against one)"
    )


def _cpu_seconds() -> float:
    """CPU time of this process and of its children that have ended."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_keys(count: int, workers: int) -> None:
    """Key pairs a second from the pool and from one process, twice each, alternating (the
    machine's other load changes less between neighbouring runs)."""
    print(f"making {count:,} key pairs (RSA-2048 + Ed25519), alternating runs")
    best: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for size in (workers, 1, workers, 1):
        cpu_start = _cpu_seconds()
        with KeyPool(size) as pool:
            start = time.perf_counter()
            for _ in pool.generate(count):
                pass
            seconds = time.perf_counter() - start
        cpu[size] = (_cpu_seconds() - cpu_start) / count  # the pool's workers reaped by now
        best[size] = min(best.get(size, seconds), seconds)
    for size, seconds in best.items():
        print(
            f"  {size} worker(s){'':<4}{seconds:>8.1f} s  {count / seconds:>7.1f} keys/s (best)"
            f"   {cpu[size] * 1000:.0f} ms of CPU a key"
        )
    print(f"  pool of {workers} against one process: {best[1] / best[workers]:.2f}x as fast")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schools", type=int, default=200, help="schools imported per case")
    parser.add_argument("--check-rows", type=int, default=10_000, help="rows checked")
    parser.add_argument("--workers", type=int, default=default_workers(), help="pool size")
    args = parser.parse_args()
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"cores usable: {default_workers()}; load average now {load}")
    bench_parallelism(args.workers)
    bench_check(args.check_rows)
    bench_keys(max(20, args.schools // 4), args.workers)
    print(f"importing {args.schools:,} schools with keys (RSA-2048 + Ed25519 each)")
    with tempfile.TemporaryDirectory() as tmp:
        pooled = bench_import(Path(tmp), "pool", args.schools, args.workers)
        single = bench_import(Path(tmp), "single", args.schools, 1)
    print(f"  pool of {args.workers} against one process: {single / pooled:.2f}x as fast")


if __name__ == "__main__":
    main()
