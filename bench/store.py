"""The results folder: append-only CSVs that survive a crash of the sweep.

A run's side files (curve, closed loop, breakdown) are appended first and its
``runs.csv`` row last, each write flushed to disk: the row is the commit
mark. On opening, a torn last line is cut off and side rows whose run has no
row are dropped, so a sweep killed at any point and run again ends with the
same rows as one that was never interrupted.
"""
import csv
import os
from pathlib import Path

import pandas as pd

RUN_COLUMNS = [
    "run_id", "impl", "devices", "n_devices", "strategy", "batchsize", "n_units", "seqlen", "repeat",
    "status", "message", "updates", "ms_per_update_median", "ms_per_update_p25", "ms_per_update_p75",
    "samples_per_s", "wall_s", "train_loss", "val_mse", "closed_loop_rmse_50", "closed_loop_rmse_all",
    "time_to_target_s", "target_mse", "flops_per_update", "optimizer", "update_budget", "max_seconds",
    "warmup", "gpu_name", "host", "started_at",
]
SIDE_FILES = {
    "curves.csv": ["run_id", "update", "elapsed_s", "train_loss", "val_mse"],
    "closed_loop.csv": ["run_id", "t", "truth", "prediction"],
    "breakdown.csv": ["run_id", "phase", "ms"],
}
RUNS = "runs.csv"


class ResultsError(Exception):
    """A results folder that cannot be used."""


def _append(path: Path, columns: list, rows: list):
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore", restval="")
        if new:
            writer.writeheader()
        writer.writerows(rows)
        f.flush()
        os.fsync(f.fileno())


def _cut_torn_line(path: Path):
    """Drop a last line that a kill left without its newline."""
    if not path.exists() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return
    path.write_bytes(data[: data.rfind(b"\n") + 1])


class ResultStore:
    def __init__(self, folder):
        self.folder = Path(folder)

    @property
    def runs_path(self) -> Path:
        return self.folder / RUNS

    def open_for_writing(self):
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as exc:
            raise ResultsError(f"cannot write to {self.folder}: {exc.strerror or exc}") from None
        self.repair()

    def repair(self):
        _cut_torn_line(self.runs_path)
        done = self.completed_ids()
        for name, columns in SIDE_FILES.items():
            path = self.folder / name
            _cut_torn_line(path)
            if not path.exists() or path.stat().st_size == 0:
                continue
            side = pd.read_csv(path, dtype={"run_id": str})
            keep = side[side["run_id"].isin(done)]
            if len(keep) != len(side):
                tmp = path.with_suffix(".tmp")
                keep.to_csv(tmp, index=False)
                os.replace(tmp, path)

    def completed_ids(self) -> set:
        if not self.runs_path.exists() or self.runs_path.stat().st_size == 0:
            return set()
        return set(pd.read_csv(self.runs_path, usecols=["run_id"], dtype=str)["run_id"])

    def append_run(self, row: dict, side: dict):
        """``side`` maps a side-file name to its rows (list of dicts)."""
        for name, rows in side.items():
            if rows:
                _append(self.folder / name, SIDE_FILES[name], rows)
        _append(self.runs_path, RUN_COLUMNS, [row])

    def load(self) -> dict:
        """All tables as DataFrames (empty ones for absent files)."""
        if not self.runs_path.exists() or self.runs_path.stat().st_size == 0:
            raise ResultsError(f"no results in {self.folder} (no {RUNS})")
        tables = {"runs": pd.read_csv(self.runs_path, keep_default_na=True)}
        for name, columns in SIDE_FILES.items():
            path = self.folder / name
            key = name.removesuffix(".csv")
            tables[key] = pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame(columns=columns)
        return tables
