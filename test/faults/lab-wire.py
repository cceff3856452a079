#!/usr/bin/env python3
"""A lossy, slow wire between two interfaces of one network namespace: what `tc qdisc add ... netem
delay D loss L` does, in userspace, for kernels built without sch_netem (this project's CI kernel has
no netem and no modules to load). Every Ethernet frame arriving on --a is sent out of --b, and every
frame arriving on --b out of --a, each --delay-ms later (in order, per direction), except the --loss
percent dropped at random. Used by test/faults/netem-lab.test.ts between a NAT-lab host's veth and
the lab's bridge.

Frames are read and written with their virtio-net header (PACKET_VNET_HDR), so checksums left to
offload and TSO/GSO super-frames cross unchanged and the kernel finishes them on the way out. Prints
one JSON line when ready and, on SIGTERM, one with what it passed and dropped. Standard library only.
"""
import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_OUTGOING = 4


def open_iface(name: str) -> socket.socket:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    s.bind((name, 0))
    s.setblocking(False)
    return s


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--a", required=True)
    p.add_argument("--b", required=True)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--loss", type=float, default=0.0, help="percent of frames dropped, each direction")
    o = p.parse_args()
    a, b = open_iface(o.a), open_iface(o.b)
    other = {a: b, b: a}
    delay = o.delay_ms / 1000.0
    loss = o.loss / 100.0
    queue: list = []
    seq = 0
    stats = {"passed": 0, "dropped": 0, "send_errors": 0}

    def stop(*_: object) -> None:
        print(json.dumps({"stopped": True, **stats}), flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(json.dumps({"ready": True, "a": o.a, "b": o.b, "delay_ms": o.delay_ms, "loss": o.loss}), flush=True)
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        for s in readable:
            # Bounded: at most 256 frames per wake-up from one side, so the other is served too.
            for _ in range(256):
                try:
                    data, addr = s.recvfrom(262144)
                except BlockingIOError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue  # what this wire (or the host) sent out of the interface
                if random.random() < loss:
                    stats["dropped"] += 1
                    continue
                heapq.heappush(queue, (time.monotonic() + delay, seq, other[s], data))
                seq += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, data = heapq.heappop(queue)
            try:
                out.send(data)
                stats["passed"] += 1
            except OSError:
                stats["send_errors"] += 1


if __name__ == "__main__":
    main()
