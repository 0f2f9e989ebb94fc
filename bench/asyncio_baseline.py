#!/usr/bin/env python3
"""Python asyncio's cost for the operations bench/task_bench.cpp, bench/sleep_bench.cpp and
bench/sync_bench.cpp time,
so that bench/run_all.sh can print coring's ratio to it. Prints one JSON object per line:
{"case": ..., "ns_per_op": ...}. uvloop is used too when it is installed (it is not on Debian)."""
import asyncio
import json
import time


def report(case, seconds, ops):
    print(json.dumps({"case": case, "ns_per_op": seconds * 1e9 / ops}), flush=True)


async def noop():
    pass


async def await_create_task(n):
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.create_task(noop())
    report("await_create_task", time.perf_counter() - t0, n)


async def sleep0_round_trip(n):
    t0 = time.perf_counter()
    for _ in range(n):
        await asyncio.sleep(0)
    report("sleep0_round_trip", time.perf_counter() - t0, n)


async def call_soon_x1000(rounds):
    loop = asyncio.get_running_loop()
    counter = [0]

    def bump():
        counter[0] += 1

    t0 = time.perf_counter()
    for _ in range(rounds):
        for _ in range(1000):
            loop.call_soon(bump)
        await asyncio.sleep(0)
    report("call_soon_x1000", time.perf_counter() - t0, rounds)


async def sleep_100k_tasks_1ms():
    async def sleeper():
        await asyncio.sleep(0.001)

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(sleeper()) for _ in range(100_000)]
    for t in tasks:
        await t
    report("sleep_100k_tasks_1ms", time.perf_counter() - t0, 1)


async def mutex_lock_unlock(n):
    lock = asyncio.Lock()
    t0 = time.perf_counter()
    for _ in range(n):
        async with lock:
            pass
    report("mutex_lock_unlock", time.perf_counter() - t0, n)


async def semaphore_acquire_release(n):
    sem = asyncio.Semaphore(4)
    t0 = time.perf_counter()
    for _ in range(n):
        async with sem:
            pass
    report("semaphore_acquire_release", time.perf_counter() - t0, n)


async def queue_put_get(n):
    q = asyncio.Queue(1)
    t0 = time.perf_counter()
    for i in range(n):
        await q.put(i)
        await q.get()
    report("queue_put_get", time.perf_counter() - t0, n)


async def queue_ping_pong(n):
    """The schedule of sync_bench's queue_ping_pong: a producer and a consumer task around a
    queue of maxsize 1; time per item."""
    q = asyncio.Queue(1)

    async def produce():
        for i in range(n):
            await q.put(i)

    t0 = time.perf_counter()
    producer = asyncio.create_task(produce())
    total = 0
    for _ in range(n):
        total += await q.get()
    await producer
    report("queue_ping_pong", time.perf_counter() - t0, n)


async def main():
    await await_create_task(200_000)
    await sleep0_round_trip(200_000)
    await call_soon_x1000(200)
    await sleep_100k_tasks_1ms()
    await mutex_lock_unlock(1_000_000)
    await semaphore_acquire_release(1_000_000)
    await queue_put_get(500_000)
    await queue_ping_pong(200_000)


if __name__ == "__main__":
    asyncio.run(main())
