# A no-op Python handler for the process section of the bench (the same result as noop_job.ts).
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "jobs", "python"))

from ttg_handler import serve  # noqa: E402

serve(lambda chunk: {"count": chunk["end"] - chunk["start"]})
