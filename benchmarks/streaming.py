"""Streaming Parquet into the engines: a data set several times Ray's object store, and the cost of
streaming beside loading whole, side by side in one run.

1. Big: ``skate make-data`` writes an MNIST-shaped data set of ``--gb`` GB in memory terms; a job
   with ``data.loading: stream`` trains the seed's MNIST classifier (BasicRNN(150) over 28 rows of
   28 pixels) on it for one epoch, on a Ray whose object store is capped at ``--object-store-mb``.
   The driver's resident memory is sampled throughout: it never holds the data.
2. A slice that fits (``--slice-rows``): the same job loaded whole and streamed, on the same engine
   with the same CPU reservation, alternating memory, stream, memory, stream (A-B-A-B) so that drift
   on a shared machine hits both; and the stream without its shuffle buffer, for the buffer's cost.
   Each figure is the second epoch's ``perf/samples_per_s`` (the engine's clock, the same for both).

    .venv/bin/python benchmarks/streaming.py [--gb 2] [--object-store-mb 300] [--slice-rows 40000]

Prints progress, then last one JSON line: ``ratio`` is streaming's samples/s over loading whole's;
``shuffle_buffer_ratio`` is the stream with its buffer over the stream without it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import ray

from skate.data.synthetic import write_mnist_like
from skate.runner import run_job
from skate.runs.metrics import read_metrics
from skate.spec import load_spec_data

ROW_BYTES = 28 * 28 * 4 + 8


def rss() -> int:
    """This process's resident memory in bytes (Linux's /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


class PeakRss:
    """Samples this process's resident memory every 0.1 s while open."""

    def __init__(self) -> None:
        self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, rss())

    def __enter__(self) -> "PeakRss":
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def job(path: str, *, loading: str, shuffle_rows: int, epochs: int, units: int) -> dict[str, Any]:
    return {"name": f"stream-{loading}-{shuffle_rows}", "seed": 42,
            "data": {"source": "parquet", "path": path, "x_columns": ["x"], "y_column": "y", "x_shape": [28, 28],
                     "loading": loading, "shuffle_rows": shuffle_rows},
            "model": {"kind": "rnn_classifier", "cell": "basic", "num_units": units},
            "train": {"epochs": epochs, "batch_size": 150, "optimizer": {"name": "adam", "lr": 0.001},
                      "strategy": {"kind": "single"}},
            "checkpoint": {"every_epochs": 1}}


def samples_per_s(spec: dict[str, Any], root: Path) -> float:
    result = run_job(load_spec_data(spec), root=root, progress=False)
    assert result.status == "completed", result.status
    return float(read_metrics(result.run_dir / "metrics.parquet").column("perf/samples_per_s").to_pylist()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0, help="the big data set's size in memory terms (GB)")
    parser.add_argument("--object-store-mb", type=int, default=300, help="Ray's object store cap (MB)")
    parser.add_argument("--slice-rows", type=int, default=40_000, help="rows of the slice loaded both ways")
    parser.add_argument("--units", type=int, default=150, help="the RNN's units (the seed's: 150)")
    parser.add_argument("--files", type=int, default=64, help="files of the big data set")
    parser.add_argument("--work", help="a folder for the data and runs (default: a temporary one)")
    args = parser.parse_args()

    work = Path(args.work or tempfile.mkdtemp(prefix="skate-streaming-"))
    rows = int(args.gb * 1e9 / ROW_BYTES)
    print(f"writing {rows} rows ({rows * ROW_BYTES / 1e6:.0f} MB in memory) in {args.files} files to {work / 'big'}",
          flush=True)
    started = time.perf_counter()
    write_mnist_like(work / "big", rows=rows, num_files=args.files, seed=0)
    write_mnist_like(work / "slice", rows=args.slice_rows, num_files=8, seed=1)
    print(f"written in {time.perf_counter() - started:.0f} s", flush=True)

    ray.init(num_cpus=2, object_store_memory=args.object_store_mb * 2**20, logging_level="ERROR", log_to_driver=False)
    try:
        base = rss()
        print("training one epoch over the big data set, streamed ...", flush=True)
        started = time.perf_counter()
        with PeakRss() as peak:
            big = samples_per_s(job(str(work / "big"), loading="stream", shuffle_rows=10_000, epochs=1,
                                    units=args.units), work / "runs")
        print(f"done in {time.perf_counter() - started:.0f} s: {big:.0f} samples/s; driver peak RSS "
              f"{peak.peak / 2**20:.0f} MB over a base of {base / 2**20:.0f} MB", flush=True)

        figures: dict[str, list[float]] = {"memory": [], "stream": [], "stream_no_buffer": []}
        for round_ in range(2):
            for arm, loading, shuffle in (("memory", "memory", 10_000), ("stream", "stream", 10_000),
                                          ("stream_no_buffer", "stream", 0)):
                value = samples_per_s(job(str(work / "slice"), loading=loading, shuffle_rows=shuffle, epochs=2,
                                          units=args.units), work / "runs")
                figures[arm].append(value)
                print(f"round {round_ + 1} {arm}: {value:.0f} samples/s", flush=True)
    finally:
        ray.shutdown()
    memory, stream, unbuffered = (statistics.median(figures[k]) for k in ("memory", "stream", "stream_no_buffer"))
    print(json.dumps({
        "dataset_mb": round(rows * ROW_BYTES / 1e6, 1), "object_store_mb": args.object_store_mb,
        "driver_peak_rss_mb": round(peak.peak / 2**20, 1), "driver_base_rss_mb": round(base / 2**20, 1),
        "completed": True, "big_samples_per_s": round(big, 1),
        "stream_samples_per_s": round(stream, 1), "memory_samples_per_s": round(memory, 1),
        "ratio": round(stream / memory, 3), "shuffle_buffer_ratio": round(stream / unbuffered, 3),
        "rounds": {k: [round(v, 1) for v in vals] for k, vals in figures.items()},
    }))


if __name__ == "__main__":
    main()
