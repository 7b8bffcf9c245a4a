"""Run evaluation tasks on Dask: a LocalCluster by default, or any running scheduler."""

import logging
from contextlib import contextmanager

from supernode.rtl.errors import UserError

from .evaluators import evaluate_point

__all__ = ["dask_client", "run_tasks"]

#: How long to wait for a scheduler to answer, and for it to have a worker.
CONNECT_TIMEOUT_S = 20
WORKER_WAIT_S = 60


@contextmanager
def dask_client(*, workers: int = 1, scheduler: "str | None" = None):
    """A Dask client: on a new ``LocalCluster`` of ``workers`` processes, or on ``scheduler``.

    Everything after this point is the same code whichever cluster it is.
    """
    # Deferred: distributed (Dask) takes half a second to import; loading and checking a
    # spec, and reading cached results, do without it.
    from distributed import Client, LocalCluster

    if scheduler is None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise UserError(f"--workers must be a positive integer, not {workers!r}")
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0", silence_logs=logging.ERROR)
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise UserError(f"--scheduler {scheduler!r} cannot be reached ({exc.__class__.__name__}); "
                        f"give the address of a running Dask scheduler such as "
                        f"tcp://127.0.0.1:8786") from None
    try:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except (TimeoutError, OSError):
            raise UserError(f"--scheduler {scheduler!r} has no worker after {WORKER_WAIT_S} s; "
                            f"start one with: dask worker {scheduler}") from None
        yield client
    finally:
        client.close()


def run_tasks(client, tasks, *, on_done, on_failed, progress=None):
    """Submit ``tasks`` and hand each outcome back as soon as it is known.

    ``on_done(task, outcome)`` and ``on_failed(task, message)`` run in this process, in
    completion order, so results are stored the moment they arrive whatever the
    cluster. ``progress`` (a tqdm bar) advances by one per finished task.
    """
    # Deferred: distributed (Dask), as in dask_client.
    from distributed import as_completed

    futures = {}
    for task in tasks:
        fut = client.submit(evaluate_point, task, key=f"supernode-point-{task['key']}",
                            pure=False, retries=0)
        futures[fut] = task
    try:
        for fut in as_completed(list(futures)):
            task = futures[fut]
            try:
                outcome = fut.result()
            except Exception as exc:  # the point fails; the sweep goes on
                on_failed(task, f"{exc.__class__.__name__}: {exc}")
            else:
                on_done(task, outcome)
            if progress is not None:
                progress.update(1)
    finally:
        client.cancel(list(futures))
