#!/usr/bin/env python3
"""Change propagation between two switchboard nodes, for bench/cluster/run.sh.

Toggles Devices' `enabled` on node A (`PATCH /api/v1/domains/{d}/devices/{id}`) at a fixed rate
(open loop: change i is due at start + i / rate, whatever A's answers take), and for every
SAMPLE-th change polls node B's directory (`POST /freeswitch/xml`, the captured `sip_auth`
request for that phone) every POLL_MS until B's answer reflects it: the phone's `<user id=…>`
gone after a disable, back after an enable. Unless PER_DOMAIN samples of the change's Domain are
being polled already: every poll is a lookup of that Domain, a lookup of a stale Domain waits
for its recompile, and many pollers of one Domain would measure their own queue. The propagation time of a sample is

    (B's first changed answer received) - (A's 200 to the PATCH received, i.e. after the commit)

and its resolution the width of the window the change became visible in: from sending the last
poll that still saw the old answer (or A's 200, when the first poll already saw the new one) to
receiving the first that saw the new one.

Standard library only (asyncio with a minimal HTTP/1.1 keep-alive client), one thread. Prints
human-readable progress on stderr and one line on stdout:

    RESULT offered_rate achieved_rate changes failed patch_p50 patch_p99 late_p99 samples
           lost p50 p99 max resolution_p50 resolution_p99 polls_per_s poll_p50 poll_p99 dropped

(times in ms), and writes every sample to --samples: "due_s patch_ms propagation_ms
resolution_ms polls device enabled".
"""

import argparse
import asyncio
import json
import random
import sys
import time
import urllib.parse


class Connection:
    """One keep-alive HTTP/1.1 connection; one request at a time."""

    def __init__(self, host, port):
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def request(self, method, path, headers, body=b""):
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        try:
            status_line = await self.reader.readline()
            if not status_line:
                raise ConnectionError("closed")
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while True:
                line = await self.reader.readline()
                if line in (b"\r\n", b"\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                parts = []
                while True:
                    size = int((await self.reader.readline()).split(b";")[0], 16)
                    if size == 0:
                        await self.reader.readline()
                        break
                    parts.append(await self.reader.readexactly(size))
                    await self.reader.readline()
                data = b"".join(parts)
            else:
                data = await self.reader.readexactly(length) if length else b""
        except Exception:
            self.close()
            raise
        if close:
            self.close()
        return status, data

    def close(self):
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Pool:
    """Connections to one server, opened as needed and reused."""

    def __init__(self, url):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.idle = []

    async def request(self, method, path, headers, body=b""):
        reused = bool(self.idle)
        conn = self.idle.pop() if reused else Connection(self.host, self.port)
        try:
            result = await conn.request(method, path, headers, body)
        except (ConnectionError, asyncio.IncompleteReadError):
            conn.close()
            if not reused:
                raise
            # The server closed it while it sat idle (keep-alive timeout): once more, on a
            # new one.
            conn = Connection(self.host, self.port)
            try:
                result = await conn.request(method, path, headers, body)
            except Exception:
                conn.close()
                raise
        except Exception:
            conn.close()
            raise
        self.idle.append(conn)
        return result


def percentile(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True, help="node A's base URL (changes)")
    p.add_argument("--b", required=True, help="node B's base URL (directory polled)")
    p.add_argument("--token", required=True)
    p.add_argument("--xml-auth", required=True, help="the Authorization header for /freeswitch/xml")
    p.add_argument("--template", required=True, help="sip_auth body, @USER@ and @DOMAIN@ placeholders")
    p.add_argument("--devices", required=True, help='lines "domain_id device_id sip_user sip_domain [enabled]"')
    p.add_argument("--rate", type=float, default=200)
    p.add_argument("--seconds", type=float, default=25)
    p.add_argument("--sample", type=int, default=5, help="poll B for every n-th change")
    p.add_argument("--per-domain", type=int, default=1,
                   help="most samples polled at once per Domain (0: no limit); a sampled change "
                        "of a Domain with that many is not polled")
    p.add_argument("--poll-ms", type=float, default=2)
    p.add_argument("--connections", type=int, default=64, help="most PATCHes in flight on A")
    p.add_argument("--drop-after-secs", type=float, default=5,
                   help="a change not sent this long after it was due is dropped (counted)")
    p.add_argument("--give-up-secs", type=float, default=30)
    p.add_argument("--samples", required=True, help="where to write every sample")
    args = p.parse_args()

    template = open(args.template, encoding="latin-1").read().strip()
    devices = [line.split() for line in open(args.devices) if line.strip()]
    random.seed(19)
    random.shuffle(devices)
    # The fifth column, when given, is the Device's `enabled` now (psql's t / f).
    enabled = {d[1]: len(d) < 5 or d[4] in ("t", "true") for d in devices}

    a, b = Pool(args.a), Pool(args.b)
    patch_headers = {"Authorization": f"Bearer {args.token}", "Content-Type": "application/json"}
    xml_headers = {"Authorization": args.xml_auth,
                   "Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": "freeswitch-xml/1.0"}
    poll_gap = args.poll_ms / 1000
    total = int(args.rate * args.seconds)

    patch_ms, late_ms, failures, dropped = [], [], [], []
    samples, lost = [], []
    polls = reconnects = 0
    poll_ms = []
    polling = {}
    completed_at = []
    tasks = []

    async def poll_until(device, want_enabled, acked):
        nonlocal polls, reconnects
        body = template.replace("@USER@", device[2]).replace("@DOMAIN@", device[3]).encode()
        marker = f'<user id="{device[2]}"'.encode()
        window_start = acked
        n = 0
        while True:
            sent = time.perf_counter()
            try:
                status, answer = await b.request("POST", "/freeswitch/xml", xml_headers, body)
            except (ConnectionError, asyncio.IncompleteReadError):
                # An idle keep-alive connection B closed: ask again on a new one.
                reconnects += 1
                if time.perf_counter() - acked > args.give_up_secs:
                    return None, None, n
                await asyncio.sleep(poll_gap)
                continue
            got = time.perf_counter()
            n += 1
            polls += 1
            poll_ms.append((got - sent) * 1000)
            if status == 200 and (marker in answer) == want_enabled:
                return got - acked, got - window_start, n
            window_start = sent
            if got - acked > args.give_up_secs:
                return None, None, n
            await asyncio.sleep(poll_gap)

    in_flight = asyncio.Semaphore(args.connections)

    async def change(i, due, device):
        want = not enabled[device[1]]
        enabled[device[1]] = want
        path = f"/api/v1/domains/{device[0]}/devices/{device[1]}"
        body = json.dumps({"enabled": want}).encode()
        async with in_flight:
            start = time.perf_counter()
            late_ms.append((start - due) * 1000)
            if start - due > args.drop_after_secs:
                # A is that far behind: the run would last as long as A's backlog.
                enabled[device[1]] = not want
                dropped.append(i)
                return
            try:
                status, answer = await a.request("PATCH", path, patch_headers, body)
            except Exception as e:
                failures.append(repr(e))
                return
        acked = time.perf_counter()
        if status != 200:
            failures.append(f"{status} {answer[:200]!r}")
            return
        patch_ms.append((acked - start) * 1000)
        completed_at.append(acked)
        if i % args.sample == 0 and (args.per_domain == 0
                                     or polling.get(device[0], 0) < args.per_domain):
            polling[device[0]] = polling.get(device[0], 0) + 1
            try:
                took, window, n = await poll_until(device, want, acked)
            finally:
                polling[device[0]] -= 1
            if took is None:
                lost.append(device[2])
            else:
                samples.append((due - t0, (acked - start) * 1000, took * 1000, window * 1000, n,
                                device[2], want))

    t0 = time.perf_counter() + 0.2
    for i in range(total):
        due = t0 + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(change(i, due, devices[i % len(devices)])))
        if i and i % int(args.rate * 5) == 0:
            done = len(completed_at)
            print(f"  {i / args.rate:.0f} s: {done} changes committed, {len(samples)} samples",
                  file=sys.stderr)
    await asyncio.gather(*tasks)

    # The achieved rate: changes committed over the time from the first one due to the last
    # one committed (a node that keeps up commits the last a few ms after it is due).
    achieved = len(completed_at) / (max(completed_at) - t0) if completed_at else 0.0
    propagation = [s[2] for s in samples]
    resolution = [s[3] for s in samples]
    elapsed = max(time.perf_counter() - t0, 1e-9)
    with open(args.samples, "w") as f:
        for s in samples:
            f.write(f"{s[0]:.3f} {s[1]:.2f} {s[2]:.2f} {s[3]:.2f} {s[4]} {s[5]} {str(s[6]).lower()}\n")
    for failure in failures[:5]:
        print(f"  a change failed: {failure}", file=sys.stderr)
    if reconnects:
        print(f"  {reconnects} polls asked again on a new connection (B closed an idle one)",
              file=sys.stderr)
    print("RESULT %.0f %.1f %d %d %.2f %.2f %.2f %d %d %.1f %.1f %.1f %.2f %.2f %.0f %.2f %.2f %d" % (
        args.rate, achieved, len(completed_at), len(failures),
        percentile(patch_ms, 50), percentile(patch_ms, 99), percentile(late_ms, 99),
        len(samples), len(lost),
        percentile(propagation, 50), percentile(propagation, 99), max(propagation, default=float("nan")),
        percentile(resolution, 50), percentile(resolution, 99), polls / elapsed,
        percentile(poll_ms, 50), percentile(poll_ms, 99), len(dropped)))


if __name__ == "__main__":
    asyncio.run(main())
