"""Time and peak memory of writing the four reconciliation reports (CSV, CSV, JSON, workbook), for
the code of the folder it is run from (run it from two trees to compare them side by side).

    cd TREE && python bench/bench_reports.py sqlite:///opus.db sqlite:///vendor.db OUT_DIR

The reconciliation runs first (one process); then the peak resident memory is reset
(``/proc/self/clear_refs``, Linux) and only the writing is measured.
"""

import os
import sys
import time

sys.path.insert(0, os.getcwd())

from reconcile.run import ReconcileOptions, reconcile  # noqa: E402
from reports.reconciliation import write_reconciliation_reports  # noqa: E402


def _status(name: str) -> float:
    """A line of /proc/self/status, in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(name):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    legacy, target, out = sys.argv[1:4]
    result = reconcile(legacy, target, ReconcileOptions(workers=1))
    rss = _status("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from now
    wall, cpu = time.perf_counter(), time.process_time()
    write_reconciliation_reports(result, out)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _status("VmHWM")
    size = os.path.getsize(os.path.join(out, "reconciliation.xlsx")) / 1e6
    print(f"{os.getcwd()}: {result.discrepancy_count:,} rows; writing: wall {wall:.2f} s, CPU {cpu:.2f} s; "
          f"RSS {rss:.0f} MB before, peak {peak:.0f} MB (+{peak - rss:.0f}); workbook {size:.1f} MB")


if __name__ == "__main__":
    main()
