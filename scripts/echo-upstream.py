#!/usr/bin/python3
"""A small upstream application for the ztgate demo and tests.

It answers every request with a JSON document listing the method, the
path and every header it received, so one can see exactly what ztgate
passed on (and what it removed).

    echo-upstream.py [--port N] [--bind ADDR] [--pid-file F]

It listens on loopback only by default.
"""

import argparse
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ztgate-echo/1"
    # headers and body are separate writes: without TCP_NODELAY each
    # keep-alive response waits for a delayed ACK (40 ms)
    disable_nagle_algorithm = True

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        doc = {
            "method": self.command,
            "path": self.path,
            "headers": [[k, v] for k, v in self.headers.items()],
            "body_bytes": len(body),
        }
        out = (json.dumps(doc, indent=1) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _answer

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--pid-file")
    args = ap.parse_args()

    srv = Server((args.bind, args.port), Echo)
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("echo upstream on http://%s:%d/" % (args.bind, args.port),
          flush=True)
    try:
        srv.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        srv.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass


if __name__ == "__main__":
    main()
