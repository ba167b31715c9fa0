"""BigQuery's REST API, the little `dfinfra adopt` and `doctor` read: `datasets.get`, answered from the offline
cloud's store (datasets terraform created, or `seed` put there as made outside dfinfra, with the authorizations
their access lists hold)."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.fakegcp.store import Store

_DATASET = re.compile(r"^/bigquery/v2/projects/([^/]+)/datasets/([^/?]+)")


class FakeBigQuery:
    def __init__(self, store: Store):
        self.store = store
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                match = _DATASET.match(self.path)
                body = (
                    fake.store.get("google_bigquery_dataset", f"projects/{match[1]}/datasets/{match[2]}")
                    if match
                    else None
                )
                if body is None:
                    what = f"Dataset {match[1]}:{match[2]}" if match else self.path
                    self._reply(404, {"error": {"code": 404, "message": f"Not found: {what}", "status": "NOT_FOUND"}})
                    return
                assert match is not None
                self._reply(
                    200,
                    {
                        "kind": "bigquery#dataset",
                        "id": f"{match[1]}:{match[2]}",
                        "datasetReference": {"projectId": match[1], "datasetId": match[2]},
                        "location": body.get("location") or "US",
                        "access": fake.access(match[1], match[2]),
                    },
                )

            def _reply(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # serve_forever polls for shutdown every 0.5 s by default: half a second lost per stop.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def access(self, project: str, dataset: str) -> list[dict]:
        """The dataset's access list as the REST API returns it: the authorizations its entries hold (a role
        entry is read through IAM instead)."""
        entries = []
        for _, _, body in self.store.list("google_bigquery_dataset_access"):
            if (body.get("project"), body.get("dataset_id")) != (project, dataset):
                continue
            for entry in body.get("dataset") or []:
                inner = (entry.get("dataset") or [{}])[0]
                reference = {"projectId": inner.get("project_id"), "datasetId": inner.get("dataset_id")}
                entries.append(
                    {"dataset": {"dataset": reference, "targetTypes": list(entry.get("target_types") or [])}}
                )
        return entries

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeBigQuery:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
