"""A ClickHouse HTTP interface in front of chdb (ClickHouse's current engine,
in-process), for benchmarks that need a server newer than Debian's
clickhouse-server 18.16: the Kinesis source's versions (micros * 10^20 +
hash, 36 digits) need UInt256 `_version` columns, ClickHouse 21.7 or later.

    python chdb_http.py PORT DATA_DIR

Serves what the clickhouse sink and a poller send: POST / with the
statement as the body, or POST /?query=INSERT ... FORMAT TabSeparated with
the rows as the body (not gzipped: use `compress = false`). Results are
TabSeparated unless the statement says otherwise; errors answer HTTP 500
with ClickHouse's "Code: N. DB::Exception: ..." text. One statement runs at
a time (one chdb session), on an on-disk database under DATA_DIR. Prints
"listening" once it answers.
"""

import http.server
import sys
import threading
import urllib.parse

from chdb import session


def main():
    port, data_dir = int(sys.argv[1]), sys.argv[2]
    db = session.Session(data_dir)
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, status, body):
            self.send_response(status)
            self.send_header("Content-Type", "text/tab-separated-values; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def run(self, statement):
            try:
                with lock:
                    result = db.query(statement, "TabSeparated")
                self.answer(200, result.bytes() if result is not None else b"")
            except Exception as error:  # chdb raises with ClickHouse's message
                text = str(error)
                if "Code:" in text:
                    text = text[text.index("Code:"):]
                self.answer(500, text.encode() + b"\n")

        def do_GET(self):
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            query = params.get("query", [""])[0]
            if not query:
                self.answer(200, b"Ok.\n")
            else:
                self.run(query)

        def do_POST(self):
            params = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            query = params.get("query", [""])[0]
            self.run(f"{query}\n{body}" if query else body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
