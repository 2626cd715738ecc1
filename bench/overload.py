#!/usr/bin/env python3
"""Overload run against a gigatile server already started on --base (by bench/overload.sh).

CLIENTS threads request distinct cold URLs (IIIF regions and sizes, fitted images, tiles across
levels) for SECONDS, far more at once than the render pool holds. Meanwhile /healthz is probed
every 50 ms from a process of its own and the server's resident memory sampled from
/proc/PID/status. Then the load stops
and the run measures how soon a fresh render succeeds and the tiles/s of a short burst, against
the same burst before the load. Prints one report; exits non-zero if an answer other than
200/302/304/503 was seen, or a 503 came without Retry-After.
"""

import argparse
import http.client
import json
import multiprocessing
import statistics
import threading
import time
import urllib.parse


def get(host, port, path, timeout=60):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), body
    finally:
        conn.close()


def rss_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def prober(host, port, pid, done, out):
    """Runs in a process of its own, so that the load's threads do not delay the probes:
    /healthz every 50 ms, and the server's resident memory beside each probe."""
    health, rss = [], []
    while not done.is_set():
        t = time.monotonic()
        try:
            st, _, _ = get(host, port, "/healthz", timeout=10)
        except Exception:
            st = 0
        health.append((time.monotonic() - t, st))
        rss.append(rss_kib(pid, "VmRSS:"))
        time.sleep(0.05)
    out.send((health, rss))


def image_urls(image, i):
    iid = urllib.parse.quote(image["id"], safe="")
    w, h = image["width"], image["height"]
    rw, rh = max(1, w // 3), max(1, h // 3)
    x, y = (i * 7919) % max(1, w - rw), (i * 104729) % max(1, h - rh)
    max_z = image["maxZoom"]
    z = max_z - (i % 3)
    n = 1 << z
    cols = (w * n // (1 << max_z) + 255) // 256
    rows = (h * n // (1 << max_z) + 255) // 256
    return [
        f"/iiif/3/{iid}/{x},{y},{rw},{rh}/{1000 + i % 1000},/0/default.jpg",
        f"/iiif/3/{iid}/full/{2048 + (i * 37) % 2048},/0/default.png",
        f"/imgserv.cgi?src=/{iid}&width={1200 + (i * 50) % 2800}&height=4000",
        f"/api/images/{iid}/tiles/{z}/{(i * 31) % max(1, cols)}/{(i * 17) % max(1, rows)}.jpg",
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="127.0.0.1:8080")
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--clients", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--memory-limit-mib", type=int, required=True)
    args = ap.parse_args()
    host, port = args.base.split(":")
    port = int(port)

    status, _, body = get(host, port, "/api/images")
    images = []
    for entry in json.loads(body):
        if entry["status"] != "ready":
            continue
        iid = urllib.parse.quote(entry["id"], safe="")
        _, _, meta = get(host, port, f"/api/images/{iid}/meta")
        meta = json.loads(meta)
        meta["id"] = entry["id"]
        images.append(meta)
    failed = [e["id"] for e in json.loads(body) if e["status"] == "failed"]
    urls = []
    for i in range(20000):
        for image in images:
            urls.extend(image_urls(image, i))
    cursor = iter(urls)
    lock = threading.Lock()
    counts = {}
    bad = []
    stop = time.monotonic() + args.seconds

    def client():
        while time.monotonic() < stop:
            with lock:
                path = next(cursor, None)
            if path is None:
                return
            try:
                st, headers, _ = get(host, port, path)
            except Exception as e:  # a refused or reset connection counts as a failure
                st, headers = f"error {type(e).__name__}", {}
            with lock:
                counts[st] = counts.get(st, 0) + 1
                if st == 503 and "retry-after" not in headers:
                    bad.append(f"503 without Retry-After: {path}")
                elif st not in (200, 302, 304, 503):
                    bad.append(f"{st}: {path}")

    def burst(label, n=200):
        # Serial fresh tiles: how fast one client is served when nobody else is.
        t = time.monotonic()
        ok = 0
        for i in range(n):
            image = images[i % len(images)]
            iid = urllib.parse.quote(image["id"], safe="")
            z = image["maxZoom"] - 1
            cols = max(1, (image["width"] // 2 + 255) // 256)
            rows = max(1, (image["height"] // 2 + 255) // 256)
            path = f"/api/images/{iid}/tiles/{z}/{(i * 7 + hash(label)) % cols}/{(i * 3) % rows}.webp"
            st, _, _ = get(host, port, path)
            ok += st == 200
        return ok, n / (time.monotonic() - t)

    before_ok, before_rate = burst("before")
    done = multiprocessing.Event()
    receive, send = multiprocessing.Pipe(duplex=False)
    probe = multiprocessing.Process(target=prober, args=(host, port, args.pid, done, send))
    probe.start()
    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    load_seconds = time.monotonic() - started
    done.set()
    health, rss = receive.recv()
    probe.join()

    # Recovery: the first fresh render that succeeds once the load is gone.
    t = time.monotonic()
    recovered = None
    for i in range(200):
        image = images[i % len(images)]
        iid = urllib.parse.quote(image["id"], safe="")
        st, _, _ = get(host, port, f"/iiif/3/{iid}/{i * 97 % 1000},{i * 89 % 1000},600,600/300,/0/default.jpg")
        if st == 200:
            recovered = time.monotonic() - t
            break
        time.sleep(0.05)
    after_ok, after_rate = burst("after")

    total = sum(counts.values())
    refused = counts.get(503, 0)
    lat = sorted(x for x, _ in health)
    peak = rss_kib(args.pid, "VmHWM:") // 1024
    print(f"images: {len(images)} ready, refused as failed: {', '.join(failed) or 'none'}")
    print(f"load: {args.clients} clients for {load_seconds:.0f} s, {total} answers: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=str)))
    print(f"503 share: {100.0 * refused / max(1, total):.1f}%")
    if lat:
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
        print(f"healthz under load: {len(lat)} probes, p50 {p(0.5):.1f} ms, p99 {p(0.99):.1f} ms, "
              f"max {lat[-1] * 1000:.1f} ms, failed {sum(1 for _, s in health if s != 200)}")
    print(f"RSS: peak {peak} MiB (VmHWM), mean under load {statistics.mean(rss) / 1024 if rss else 0:.0f} MiB, "
          f"MEMORY_LIMIT {args.memory_limit_mib} MiB, peak/limit {peak / args.memory_limit_mib:.2f}")
    print(f"recovery: first fresh render {('%.2f s' % recovered) if recovered is not None else 'never'} "
          f"after the load; burst of 200 tiles: {before_rate:.0f}/s before ({before_ok} ok), "
          f"{after_rate:.0f}/s after ({after_ok} ok)")
    for line in bad[:10]:
        print("BAD", line)
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
