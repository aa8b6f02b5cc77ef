"""Data-parallel training on one machine: `--workers N` runs N processes that split each optimiser step's utterances.

Why processes and not threads: on this 2-core machine one process with 2 threads trains at ~45 audio-s/s, two
processes of 1 thread each at ~62 together (PyTorch's intra-op threading leaves much of the second core idle on
these small matrices). The step stays the same step: every process draws the same micro-batches from the same
sampler, takes every N-th utterance of each, and the gradients are summed (gloo, over the loopback interface) before
one identical update everywhere, so N workers follow the single-process run up to float rounding.

Rank 0 is the process the command started: it alone logs, evaluates and writes checkpoints; the others start from
the checkpoint it writes just before it spawns them, and die with it. A worker that fails stops the run (rank 0 exits
with an error; resume from last.pt).
"""
import ctypes
import datetime
import multiprocessing
import os
import signal
import socket
import threading
import time
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.distributed as dist

MicroBatches = List[Tuple[str, List[str]]]

# Rank 0 evaluates while the others wait at their next collective; an evaluation takes minutes, never an hour.
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=60)


class Peers:
    """This process's place among the run's workers; with one worker every method is a no-op."""

    def __init__(self, rank: int = 0, world: int = 1):
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside a world of {world}")
        self.rank, self.world = rank, world

    @property
    def active(self) -> bool:
        return self.world > 1

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def share(self, micro_batches: MicroBatches) -> MicroBatches:
        """This worker's part of a step: every world-th utterance of each micro-batch (those are sorted by length,
        so the parts are balanced); micro-batches left empty are dropped."""
        if not self.active:
            return list(micro_batches)
        mine = [(pool, keys[self.rank::self.world]) for pool, keys in micro_batches]
        return [(pool, keys) for pool, keys in mine if keys]

    def sum_gradients(self, params: Sequence[torch.Tensor], extras: Sequence[float]) -> List[float]:
        """Sums every parameter's gradient (a missing one counts as zero) and the `extras` over the workers, in one
        collective; returns the summed extras."""
        if not self.active:
            return list(extras)
        grads = [p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel(), dtype=p.dtype) for p in params]
        flat = torch.cat(grads + [torch.tensor(list(extras), dtype=torch.float32)])
        dist.all_reduce(flat)
        offset = 0
        for p in params:  # views into the summed buffer, which lives until the next zero_grad
            n = p.numel()
            p.grad = flat[offset: offset + n].view_as(p)
            offset += n
        return flat[offset:].tolist()

    def sum_flags(self, flags: Sequence[float]) -> List[float]:
        if not self.active:
            return list(flags)
        t = torch.tensor(list(flags), dtype=torch.float64)
        dist.all_reduce(t)
        return t.tolist()

    def from_leader(self, obj):
        """Rank 0's value of `obj`, on every worker."""
        if not self.active:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def agree(self, value: float) -> bool:
        """True when every worker holds the same `value` (a checksum of the weights, say)."""
        if not self.active:
            return True
        t = torch.tensor([value, -value], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return float(t[0]) == -float(t[1])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(rank: int, world: int, port: int) -> Peers:
    if world > 1:
        os.environ["GLOO_SOCKET_IFNAME"] = "lo"
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=COLLECTIVE_TIMEOUT)
    return Peers(rank, world)


def die_with_parent():
    """Linux: SIGKILL this process when the process that started it exits, so no worker outlives a killed run."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Workers:
    """Ranks 1..world-1 of a run: spawned by rank 0, each running target(peers, *args) once it has joined."""

    def __init__(self, world: int, target: Callable, args: tuple):
        ctx = multiprocessing.get_context("spawn")
        self.world, self.port = world, free_port()
        self.joining = [ctx.Event() for _ in range(1, world)]
        self.procs = [ctx.Process(target=_worker_entry, args=(target, rank, world, self.port, joining, tuple(args)),
                                  daemon=True) for rank, joining in zip(range(1, world), self.joining)]
        for p in self.procs:
            p.start()

    def connect(self, startup_timeout: float = 600.0) -> Peers:
        """Rank 0 joins once every worker is about to. Waiting here, in Python, notices a worker that failed to start;
        waiting inside the rendezvous would not (it holds the interpreter until every rank has joined)."""
        deadline = time.monotonic() + startup_timeout
        while not all(e.is_set() for e in self.joining):
            failed = [p.exitcode for p in self.procs if p.exitcode is not None]
            if failed:
                raise RuntimeError(f"a worker process ended with exit code {failed[0]} before joining")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {startup_timeout:.0f} s")
            time.sleep(0.1)
        return connect(0, self.world, self.port)

    def watch(self, on_failure: Callable[[int], None], interval: float = 5.0) -> threading.Event:
        return watch_workers(self.procs, on_failure, interval)

    def join(self, timeout: float):
        for p in self.procs:
            p.join(timeout=timeout)


def _worker_entry(target: Callable, rank: int, world: int, port: int, joining, args: tuple):
    worker_signals()
    joining.set()
    peers = connect(rank, world, port)
    try:
        target(peers, *args)
    finally:
        close(peers)


def watch_workers(procs: Sequence, on_failure: Callable[[int], None], interval: float = 5.0) -> threading.Event:
    """Calls on_failure(exit code) once when a worker ends with a failure (a non-zero exit code: an exception, or
    killed). Such a worker makes rank 0's next collective fail, but rank 0 may be evaluating for minutes first. Set
    the returned event to stop watching. A worker's normal end (exit code 0, after rank 0's stop) is not a failure."""
    done = threading.Event()

    def watch():
        while not done.wait(interval):
            failed = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if failed:
                on_failure(failed[0])
                return

    threading.Thread(target=watch, name="earshot-worker-watch", daemon=True).start()
    return done


def worker_signals():
    """A worker stops when rank 0 says so (at a step boundary), not on its own: a Ctrl-C or SIGTERM sent to the
    process group would otherwise leave rank 0 waiting for a peer that is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent()


def close(peers: Optional[Peers]):
    if peers is not None and peers.active and dist.is_initialized():
        dist.destroy_process_group()
