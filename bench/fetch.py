#!/usr/bin/env python3
"""Fetches every URL path on stdin from HOST:PORT over one keep-alive connection, in order,
and prints how many succeeded, failed, and the bytes received.

usage: fetch.py HOST PORT < paths.txt
"""
import http.client
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = http.client.HTTPConnection(host, port, timeout=60)
    ok = failed = received = 0
    for line in sys.stdin:
        path = line.strip()
        if not path:
            continue
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status == 200 and body:
            ok += 1
            received += len(body)
        else:
            failed += 1
    print(f"ok={ok} failed={failed} bytes={received}")


if __name__ == "__main__":
    main()
