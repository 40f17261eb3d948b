"""A minimal in-memory Hugging Face Hub for offline tests (model repositories only).

It speaks the part of the Hub HTTP API that ``huggingface_hub`` 2.x uses for ``create_repo``, ``upload_folder`` /
``create_commit``, ``model_info``/``repo_info``, ``list_repo_tree``, ``hf_hub_download`` and ``snapshot_download``,
and so for ``transformers``' ``from_pretrained`` when ``HF_ENDPOINT`` points at it. Endpoints served:

====================================================  ===========================================================
``POST /api/repos/create``                            create a model repo (409 if it exists; create_repo's
                                                      ``exist_ok=True`` accepts that)
``POST /api/models/{ns}/{name}/preupload/{rev}``      every file answers ``uploadMode: "regular"`` (base64 inside
                                                      the commit), so no LFS/Xet transfer is ever needed
``POST /api/models/{ns}/{name}/commit/{rev}``         ndjson commit: ``header``, ``file``, ``deletedFile``,
                                                      ``deletedFolder`` (``lfsFile`` -> 400)
``GET  /api/models/{ns}/{name}[/revision/{rev}]``     model info: ``id``, ``sha``, ``siblings``, ``private``
``GET  /api/models/{ns}/{name}/tree/{rev}[/{path}]``  tree listing (``recursive`` honoured, one page)
``HEAD|GET /{ns}/{name}/resolve/{rev}/{path}``        file bytes with ``ETag`` (git blob sha1), ``X-Repo-Commit``,
                                                      ``Content-Length``; 404 with ``X-Error-Code``
                                                      ``RepoNotFound`` / ``RevisionNotFound`` / ``EntryNotFound``
====================================================  ===========================================================

A revision is ``main`` or the sha of any earlier commit. Anything else answers 404 and is recorded in
``FakeHub.unhandled`` (except the paths in ``QUIET_404``). The real Hub stores ``*.safetensors`` and large files through LFS/Xet; this server
deliberately makes everything a regular file, which ``huggingface_hub`` accepts since the server decides the mode.

Example:
    >>> with FakeHub() as hub:                                  # doctest: +SKIP
    ...     HfApi(endpoint=hub.url).create_repo("me/m")
Run ``python tests/experiments/fake_hub.py`` to serve one until Ctrl-C (it prints its URL).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

REPO = r"(?P<repo>[^/]+/[^/]+)"
ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("POST", re.compile(rf"^/api/models/{REPO}/preupload/(?P<rev>[^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{REPO}/commit/(?P<rev>[^/]+)$"), "commit"),
    ("GET", re.compile(rf"^/api/models/{REPO}(?:/revision/(?P<rev>[^/]+))?$"), "info"),
    ("GET", re.compile(rf"^/api/models/{REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?$"), "tree"),
    ("GET", re.compile(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
    ("HEAD", re.compile(rf"^/{REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$"), "resolve"),
]

QUIET_404 = {"/api/agent-harnesses"}
"""Answered 404 without being recorded as unhandled: huggingface_hub fetches this telemetry registry on its own and
caches whatever it gets under HF_HOME, so the fake hub must not hand it a fake one."""


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a blob, which the Hub uses as oid and ETag of regular files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None, **extra):
        super().__init__(message)
        self.status, self.code, self.commit, self.extra = status, code, commit, extra


class FakeHub:
    """The server and its state: ``repos[repo_id] = {"private": bool, "commits": [(sha, {path: bytes}), ...]}``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.repos: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        hub = self

        class Handler(_Handler):
            fake_hub = hub

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "FakeHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- state helpers
    def snapshot(self, repo: str, rev: str | None) -> tuple[str, dict[str, bytes]]:
        """(commit sha, files) of ``repo`` at ``rev`` (``main``/None = latest)."""
        if repo not in self.repos:
            raise HubError(404, f"Repository {repo} not found", "RepoNotFound")
        commits = self.repos[repo]["commits"]
        if rev in (None, "main"):
            return commits[-1]
        for sha, files in commits:
            if sha == rev:
                return sha, files
        raise HubError(404, f"Revision {rev} not found in {repo}", "RevisionNotFound")

    def _commit(self, repo: str, files: dict[str, bytes], message: str) -> str:
        parent = self.repos[repo]["commits"][-1][0] if self.repos[repo]["commits"] else ""
        digest = hashlib.sha1(f"{parent}\n{message}\n".encode())
        for path in sorted(files):
            digest.update(f"{path}\0{git_blob_sha1(files[path])}\n".encode())
        sha = digest.hexdigest()
        self.repos[repo]["commits"].append((sha, files))
        return sha

    # ---- endpoints: each returns (status, json-able body) or raises HubError
    def create(self, m, body: bytes):
        payload = json.loads(body)
        if payload.get("type", "model") != "model":
            raise HubError(400, f"fake hub serves model repos only, got type={payload.get('type')!r}")
        repo = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
        if repo in self.repos:
            raise HubError(409, "You already created this model repo", url=f"{self.url}/{repo}")  # the Hub sends url
        self.repos[repo] = {"private": payload.get("visibility") == "private" or bool(payload.get("private")),
                            "commits": []}
        self._commit(repo, {}, "initial commit")
        return 200, {"url": f"{self.url}/{repo}", "name": repo, "id": repo}

    def preupload(self, m, body: bytes):
        _, files = self.snapshot(m["repo"], m["rev"])
        return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                "oid": git_blob_sha1(files[f["path"]]) if f["path"] in files else None}
                               for f in json.loads(body)["files"]]}

    def commit(self, m, body: bytes):
        if m["rev"] != "main":
            raise HubError(400, f"fake hub commits to 'main' only, got {m['rev']!r}")
        _, files = self.snapshot(m["repo"], "main")
        files, summary = dict(files), ""
        for line in body.decode().splitlines():
            item = json.loads(line)
            key, value = item["key"], item["value"]
            if key == "header":
                summary = value.get("summary", "")
            elif key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                files = {p: d for p, d in files.items() if not p.startswith(value["path"].rstrip("/") + "/")}
            else:
                raise HubError(400, f"fake hub does not support commit operation {key!r} (all uploads are regular)")
        sha = self._commit(m["repo"], files, summary)
        return 200, {"commitUrl": f"{self.url}/{m['repo']}/commit/{sha}", "commitOid": sha, "success": True}

    def info(self, m, body: bytes):
        sha, files = self.snapshot(m["repo"], m["rev"])
        return 200, {"id": m["repo"], "modelId": m["repo"], "sha": sha, "private": self.repos[m["repo"]]["private"],
                     "lastModified": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"), "tags": [],
                     "siblings": [{"rfilename": p} for p in sorted(files)]}

    def tree(self, m, body: bytes, query: dict):
        sha, files = self.snapshot(m["repo"], m["rev"])
        prefix = m["path"].strip("/") + "/" if m["path"] else ""
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        entries: dict[str, dict] = {}
        for path in sorted(p for p in files if p.startswith(prefix)):
            rest = path[len(prefix):]
            if recursive or "/" not in rest:
                for i, part in enumerate(rest.split("/")[:-1] if recursive else []):  # parent folders
                    folder = prefix + "/".join(rest.split("/")[: i + 1])
                    entries.setdefault(folder, {"type": "directory", "path": folder, "oid": sha, "size": 0})
                entries[path] = {"type": "file", "path": path, "size": len(files[path]),
                                 "oid": git_blob_sha1(files[path])}
            else:
                folder = prefix + rest.split("/")[0]
                entries.setdefault(folder, {"type": "directory", "path": folder, "oid": sha, "size": 0})
        return 200, list(entries.values())

    def resolve(self, m, body: bytes):
        sha, files = self.snapshot(m["repo"], m["rev"])
        if m["path"] not in files:
            raise HubError(404, f"Entry {m['path']} not found", "EntryNotFound", commit=sha)
        return sha, files[m["path"]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake_hub: FakeHub

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _send(self, status: int, data: bytes, headers: dict[str, str], body: bool = True) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def _handle(self, method: str) -> None:
        hub = self.fake_hub
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        hub.requests.append((method, url.path))
        route = next(((name, r.match(url.path)) for meth, r, name in ROUTES if meth == method and r.match(url.path)),
                     None)
        try:
            if route is None:
                if url.path not in QUIET_404:
                    hub.unhandled.append((method, self.path))
                raise HubError(404, f"fake hub does not serve {method} {url.path}")
            name, match = route
            m = {k: unquote(v) if v is not None else None for k, v in match.groupdict().items()}
            with hub.lock:
                if name == "resolve":
                    sha, data = hub.resolve(m, body)
                    headers = {"ETag": f'"{git_blob_sha1(data)}"', "X-Repo-Commit": sha,
                               "Content-Type": "application/octet-stream"}
                    return self._send(200, data, headers, body=method == "GET")
                args = (m, body, parse_qs(url.query)) if name == "tree" else (m, body)
                status, payload = getattr(hub, name)(*args)
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        except HubError as e:
            headers = {"Content-Type": "application/json", "X-Error-Message": str(e)}
            if e.code:
                headers["X-Error-Code"] = e.code
            if e.commit:
                headers["X-Repo-Commit"] = e.commit
            self._send(e.status, json.dumps({"error": str(e), **e.extra}).encode(), headers, body=method != "HEAD")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")


if __name__ == "__main__":
    with FakeHub() as running:
        print(f"fake hub serving at {running.url} (HF_ENDPOINT={running.url}); Ctrl-C to stop", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
