"""Wait until HOST:PORT accepts TCP connections; exit 1 if it does not within TIMEOUT seconds.

Usage: wait_for_port.py HOST PORT [TIMEOUT]   (TIMEOUT defaults to 30)
"""

import socket
import sys
import time


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    host, port = argv[0], int(argv[1])
    timeout = float(argv[2]) if len(argv) == 3 else 30.0
    if wait_for_port(host, port, timeout):
        return 0
    print(f"wait_for_port: nothing accepted connections on {host}:{port} within {timeout:g} s", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
