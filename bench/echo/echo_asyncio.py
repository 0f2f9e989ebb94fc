#!/usr/bin/env python3
"""echo_asyncio: the streams echo server in Python asyncio (read / write / drain), a reference
row of bench/echo/compare.sh beside coring's --streams server.

    python3 echo_asyncio.py [--port P]    prints "listening on 127.0.0.1:P"; SIGINT/SIGTERM stop it.
"""
import asyncio
import signal
import sys


async def echo(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print(f"listening on 127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set_result, None)
    await stop
    server.close()


if __name__ == "__main__":
    port = 8888
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "--port":
        port = int(args[1])
    elif args:
        sys.exit("usage: echo_asyncio.py [--port P]")
    asyncio.run(main(port))
