"""One of two processes that claim and free the one slot of pool ``duckdb`` 30 times, as fast as they
can, from the same moment (tests/test_dagster_event_log.py). Prints the (claimed, freed) times.

``mode`` ``project``: the project's SQLite storage's claim; ``dagster``: Dagster's own
``SqlEventLogStorage._claim_concurrency_slot`` on the same storage (for comparison by hand).
"""

import json
import sys
import time

from resources.dagster_event_log import BatchedSqliteEventLogStorage
from resources.dagster_internals import SqlEventLogStorage


def main(base_dir: str, run_id: str, mode: str, start_at: float) -> None:
    storage = BatchedSqliteEventLogStorage(base_dir=base_dir)
    if mode == "project":
        claim = storage._claim_concurrency_slot
    else:

        def claim(*args):
            return SqlEventLogStorage._claim_concurrency_slot(storage, *args)

    while time.time() < start_at:
        time.sleep(0.001)
    holds: list[tuple[float, float]] = []
    attempt = 0
    while len(holds) < 30:
        step_key = f"step-{attempt}"
        attempt += 1
        if claim("duckdb", run_id, step_key).name == "CLAIMED":
            claimed = time.time()
            time.sleep(0.002)
            holds.append((claimed, time.time()))
            storage.free_concurrency_slot_for_step(run_id, step_key)
    print(json.dumps(holds))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
