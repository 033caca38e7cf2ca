"""A loopback pass-through in front of the moto server, for `scan --athena`'s command-line tests.

Real boto3 in the `rootcheck` subprocess talks to it (`AWS_ENDPOINT_URL`); it forwards every
request to moto and answers with moto's answer, and on the way it:

- records each call as (operation, request): `AWSGlue.GetTable`, `AmazonAthena.StartQueryExecution`,
  `S3 GET /bucket/key`, ... so a test can check the call sequence, or that there was no call at all;
- answers an operation with an AWS error instead (`fail`), as AWS does when access is denied;
- rewrites `GetQueryExecution` from a script (`states`): what moto cannot show, a query that runs
  for a while scanning data, fails, or is cancelled by a workgroup's cutoff;
- gives `StartQueryExecution` the workgroup's result location when the request has none, which
  Athena does and moto does not (moto writes the seeded results only to a location in the request).

`running` is set at the first `GetQueryExecution` answered with a scripted state, so a test can
interrupt the command while its query runs. Only the standard library; signatures are not checked.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class AwsProxy:
    def __init__(self, upstream: str):
        self.upstream = urlsplit(upstream)
        self.calls: list[tuple[str, dict | str]] = []
        self.failures: dict[str, tuple[int, str, str]] = {}  # operation -> (status, code, message)
        self.states: list[dict] = []  # GetQueryExecution overrides, one per poll; the last one repeats
        self.result_location: str | None = None
        self.running = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> AwsProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail(self, operation: str, code: str, message: str, status: int = 400) -> None:
        self.failures[operation] = (status, code, message)

    def operations(self) -> list[str]:
        """The calls in order, consecutive repeats (polls) folded into one."""
        names = [name for name, _ in self.calls]
        return [name for i, name in enumerate(names) if i == 0 or names[i - 1] != name]

    def requests(self, operation: str) -> list:
        return [body for name, body in self.calls if name == operation]

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _relay(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target = self.headers.get("X-Amz-Target")
                operation = target or f"S3 {self.command} {self.path.split('?')[0]}"
                request = json.loads(body or b"{}") if target else self.path
                if operation == "AmazonAthena.StartQueryExecution" and "ResultConfiguration" not in request:
                    request["ResultConfiguration"] = {"OutputLocation": proxy.result_location}
                    body = json.dumps(request).encode()
                proxy.calls.append((operation, request))
                failure = next((f for name, f in proxy.failures.items() if operation.startswith(name)), None)
                if failure:
                    return self._error(target, *failure)
                status, headers, answer = proxy._forward(self.command, self.path, self.headers, body)
                if operation == "AmazonAthena.GetQueryExecution" and proxy.states and status == 200:
                    answer = proxy._scripted(answer)
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def _error(self, target: str | None, status: int, code: str, message: str) -> None:
                if target:  # the JSON protocols (Athena, Glue)
                    answer = json.dumps({"__type": code, "message": message}).encode()
                    kind = "application/x-amz-json-1.1"
                else:  # S3
                    answer = (
                        f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
                        f"<Message>{message}</Message></Error>"
                    ).encode()
                    kind = "application/xml"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _relay

        return Handler

    def _forward(self, method: str, path: str, headers, body: bytes):
        connection = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port)
        try:
            forwarded = {k: v for k, v in headers.items() if k.lower() not in ("host", "content-length")}
            connection.request(method, path, body=body or None, headers=forwarded)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _scripted(self, answer: bytes) -> bytes:
        polls = len(self.requests("AmazonAthena.GetQueryExecution"))
        state = self.states[min(polls, len(self.states)) - 1]
        execution = json.loads(answer)
        status = execution["QueryExecution"]["Status"]
        if status["State"] == "CANCELLED":  # stopped through StopQueryExecution: moto's answer stands
            return answer
        status.update({k: v for k, v in state.items() if k in ("State", "StateChangeReason", "AthenaError")})
        execution["QueryExecution"]["Statistics"]["DataScannedInBytes"] = state.get("scanned", 0)
        if state.get("State") in ("QUEUED", "RUNNING"):
            self.running.set()
        return json.dumps(execution).encode()
