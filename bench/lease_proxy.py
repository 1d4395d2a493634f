"""Counting proxy for bench/leases.sh: forwards every request to DynamoDB
Local unchanged and counts the requests that touch the lease table, by
operation. GET /counts returns the counts as JSON; POST /reset zeroes them.

    python bench/lease_proxy.py LISTEN_PORT UPSTREAM_PORT LEASE_TABLE
"""

import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

listen_port, upstream_port, lease_table = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
counts = {}
lock = threading.Lock()
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}


def touches_lease_table(body):
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return False
    if request.get("TableName") == lease_table:
        return True
    return lease_table in (request.get("RequestItems") or {})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        with lock:
            body = json.dumps(counts).encode()
        self.reply(200, body, [("Content-Type", "application/json")])

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/reset":
            with lock:
                counts.clear()
            return self.reply(200, b"{}")
        target = (self.headers.get("X-Amz-Target") or "?").split(".")[-1]
        if touches_lease_table(body):
            with lock:
                counts[target] = counts.get(target, 0) + 1
        upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        upstream.request("POST", self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
        upstream.close()
        self.reply(response.status, data, kept)


ThreadingHTTPServer(("127.0.0.1", listen_port), Handler).serve_forever()
