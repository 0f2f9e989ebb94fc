#!/usr/bin/env python3
"""The Python baseline of coring_fetch: the same GETs with aiohttp (Debian's python3-aiohttp),
the library the asyncio guides fetch with: one ClientSession, `concurrency` tasks each fetching
until the count is reached. Prints "requests N seconds S rps R".
    aiohttp_fetch.py URL COUNT CONCURRENCY
"""
import asyncio
import sys
import time

import aiohttp


async def main(url: str, count: int, concurrency: int) -> int:
    remaining = count
    failures = 0
    size = 0

    async def fetcher(session: aiohttp.ClientSession) -> None:
        nonlocal remaining, failures, size
        while remaining > 0:
            remaining -= 1
            async with session.get(url) as response:
                body = await response.read()
                size += len(body)
                if response.status != 200:
                    failures += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        start = time.perf_counter()
        await asyncio.gather(*(fetcher(session) for _ in range(concurrency)))
        seconds = time.perf_counter() - start
    print(f"requests {count} seconds {seconds:.4f} rps {count / seconds:.0f} bytes {size} failures {failures}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: aiohttp_fetch.py URL COUNT CONCURRENCY")
    sys.exit(asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
