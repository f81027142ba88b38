#!/usr/bin/env python3
"""Opens N concurrent /api/watch streams, waits for each one's first document, triggers
one catalog change (a drain), and reports how long each watcher took to receive the
complete next document. Loopback only.

Documents are found by brace depth (the generated catalog has no braces in strings)."""
import asyncio, json, sys, time, urllib.request

HOST, PORT = sys.argv[1], int(sys.argv[2])
N = int(sys.argv[3])
DRAIN_ID = sys.argv[4]


async def watcher(ready, changed_at, results):
    reader, writer = await asyncio.open_connection(HOST, PORT, limit=1 << 24)
    writer.write(f"GET /api/watch HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    depth, docs = 0, 0
    started = False
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            break
        # Chunked transfer framing carries hex sizes and CRLFs only: no braces.
        opens, closes = chunk.count(b"{"), chunk.count(b"}")
        if opens:
            started = True
        depth += opens - closes
        if started and depth == 0:
            docs += 1
            started = False
            if docs == 1:
                ready.release()
            elif docs == 2:
                results.append(time.monotonic() - changed_at[0])
                break
    writer.close()


async def main():
    ready = asyncio.Semaphore(0)
    changed_at = [0.0]
    results = []
    tasks = [asyncio.create_task(watcher(ready, changed_at, results)) for _ in range(N)]
    for _ in range(N):
        await ready.acquire()
    changed_at[0] = time.monotonic()
    req = urllib.request.Request(f"http://{HOST}:{PORT}/api/services/{DRAIN_ID}/drain", method="POST")
    await asyncio.get_running_loop().run_in_executor(None, urllib.request.urlopen, req)
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=600)
    results.sort()
    pct = lambda p: results[min(len(results) - 1, int(p * len(results)))] * 1000
    print(json.dumps({"watchers": len(results), "p50_ms": round(pct(0.5), 1),
                      "p99_ms": round(pct(0.99), 1), "max_ms": round(results[-1] * 1000, 1)}))


asyncio.run(main())
