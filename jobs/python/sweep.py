"""ttg.sweep (jobs/sweep.ts) as a Python handler: the same values, the same sums.

    ttg run --cmd "python3 jobs/python/sweep.py"

`sum` is added in parameter order, as jobs/sweep.ts does; `sum_parts` holds the exact sum as
non-overlapping partials (Shewchuk's, as in math.fsum), for a combine that adds them exactly.
"""
import time

from ttg_handler import serve


def add_exact(partials, x):
    """Adds x to the exact sum kept as non-overlapping partials."""
    i = 0
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        hi = x + y
        lo = y - (hi - x)
        if lo:
            partials[i] = lo
            i += 1
        x = hi
    partials[i:] = [x]


def run(chunk):
    params = range(chunk["start"], chunk["end"])
    time.sleep(chunk["args"].get("work_ms", 0) * len(params) / 1000)  # simulated work
    values = [((p * 7 + 13) % 1000) + float(f"0.{p % 100}") for p in params]
    total, partials = 0.0, []
    for v in values:  # not sum(): Python 3.12+ sums floats with compensation
        total += v
        add_exact(partials, v)
    n = len(values)
    return {
        "sum": total,
        "count": n,
        "min": min(values),
        "max": max(values),
        "avg": total / n,
        "sum_parts": partials,
    }


if __name__ == "__main__":
    serve(run)
