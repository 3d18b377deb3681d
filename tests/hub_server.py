"""A local stand-in for the HuggingFace Hub, for tests: the few HTTP endpoints that huggingface_hub's
`create_repo`, `repo_info`, `list_repo_tree`, `upload_folder` (preupload + NDJSON commit, regular
files in base64), `hf_hub_download` and `snapshot_download` (HEAD/GET resolve) use. What it receives
is stored on disk: `ROOT/{type}s/{owner}/{name}/files/...` is the head of the main branch.

Faults are injected per request: `server.fail(r"POST /api/.*/commit/", 429)` answers that status,
`server.fail(PATTERN, "drop")` drops the connection mid-transfer (half the request body read, or half
the response body sent; a retry of the same request gets no answer at all).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

INVALID_TOKEN = "Invalid credentials in Authorization header"


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class Repo:
    """One repo on disk: its files (head of main), its commits and its visibility."""

    def __init__(self, root: Path):
        self.root = root
        self.files = root / "files"

    @property
    def meta(self) -> dict:
        return json.loads((self.root / "meta.json").read_text())

    def write_meta(self, meta: dict) -> None:
        (self.root / "meta.json").write_text(json.dumps(meta))

    @property
    def head(self) -> str:
        return self.meta["commits"][-1]

    def paths(self) -> list[str]:
        return sorted(p.relative_to(self.files).as_posix() for p in self.files.rglob("*") if p.is_file())

    def read(self, path: str) -> bytes | None:
        f = self.files / path
        return f.read_bytes() if f.is_file() and self.files.resolve() in f.resolve().parents else None


class HubServer:
    def __init__(self, root: Path, token: str, user: str = "tester"):
        self.root = Path(root)
        self.token = token
        self.user = user
        self.requests: list[str] = []
        self.faults: list[tuple[re.Pattern, int | str]] = []
        self._dropped: set[str] = set()
        self._lock = threading.Lock()
        server = self

        class Handler(_Handler):
            hub = server

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> HubServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail(self, pattern: str, action: int | str) -> None:
        """Answer requests matching `METHOD PATH` with a status code (a 404 says the repo is not there), or
        drop them ("drop")."""
        self.faults.append((re.compile(pattern), action))
        self._dropped.clear()

    def heal(self) -> None:
        self.faults.clear()
        self._dropped.clear()

    def repo(self, repo_type: str, repo_id: str) -> Repo | None:
        root = self.root / f"{repo_type}s" / repo_id
        return Repo(root) if (root / "meta.json").is_file() else None

    def create(self, repo_type: str, repo_id: str, private: bool) -> Repo:
        repo = Repo(self.root / f"{repo_type}s" / repo_id)
        repo.files.mkdir(parents=True)
        repo.write_meta({"private": private, "commits": [hashlib.sha1(repo_id.encode()).hexdigest()]})
        return repo

    def commit(self, repo: Repo, lines: list[dict]) -> str:
        """Apply an NDJSON commit payload; returns the new commit's SHA."""
        with self._lock:
            meta = repo.meta
            for item in lines:
                key, value = item["key"], item["value"]
                if key == "header":
                    parent = value.get("parentCommit")
                    if parent and parent != meta["commits"][-1]:
                        raise _Conflict(parent)
                elif key == "file":
                    path = repo.files / value["path"]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(base64.b64decode(value["content"]))
                elif key == "deletedFile":
                    (repo.files / value["path"]).unlink(missing_ok=True)
                elif key == "deletedFolder":
                    shutil.rmtree(repo.files / value["path"], ignore_errors=True)
                else:
                    raise ValueError(f"commit operation {key} not supported here (LFS files)")
            sha = hashlib.sha1((meta["commits"][-1] + json.dumps(lines)).encode()).hexdigest()
            meta["commits"].append(sha)
            repo.write_meta(meta)
            return sha


class _Conflict(Exception):
    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: HubServer

    def log_message(self, format: str, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        self.handle_request("GET")

    def do_HEAD(self) -> None:
        self.handle_request("HEAD")

    def do_POST(self) -> None:
        self.handle_request("POST")

    # ---- plumbing -------------------------------------------------------------------------------
    def handle_request(self, method: str) -> None:
        url = urlsplit(self.path)
        self.route_path, self.query = unquote(url.path), parse_qs(url.query)
        line = f"{method} {self.route_path}"
        self.hub.requests.append(line)
        for pattern, action in self.hub.faults:
            if pattern.search(line):
                if action == "drop":
                    return self.drop(method, line)
                headers = {"Retry-After": "0"} | ({"X-Error-Code": "RepoNotFound"} if action == 404 else {})
                return self.reply(action, {"error": f"fault {action}"}, headers=headers)
        auth = self.headers.get("Authorization")
        self.authorized = auth == f"Bearer {self.hub.token}"
        if auth is not None and not self.authorized:
            return self.reply(401, {"error": INVALID_TOKEN}, headers={"X-Error-Message": INVALID_TOKEN})
        try:
            self.route(method)
        except _Conflict:
            self.reply(412, {"error": "A commit has happened since. Please refresh and try again."})

    def drop(self, method: str, line: str) -> None:
        """Half the request body read or half the response sent, then the connection closes."""
        self.close_connection = True
        first = line not in self.hub._dropped
        self.hub._dropped.add(line)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length // 2)
        if first and method == "GET" and "/resolve/" in line:
            self.route_partial = True
            self.route(method)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, payload: object = None, raw: bytes | None = None, headers: dict | None = None,
              head: bool = False) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if head:
            return
        if getattr(self, "route_partial", False):
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            return
        self.wfile.write(data)

    def not_found(self, code: str, what: str) -> None:
        self.reply(404, {"error": f"{what} not found"}, headers={"X-Error-Code": code})

    # ---- endpoints ------------------------------------------------------------------------------
    def route(self, method: str) -> None:
        p = self.route_path
        if method == "POST" and p == "/api/repos/create":
            return self.create_repo()
        if method == "POST" and p == "/api/validate-yaml":
            self.body()
            return self.reply(200, {"errors": [], "warnings": []})
        m = re.match(r"^/api/(datasets|models|spaces)/([^/]+/[^/]+)(?:/(revision|tree|preupload|commit)/([^/]+)(/.*)?)?$", p)
        if m:
            repo_type, repo_id, action, _rev, rest = m.groups()
            repo = self.readable(repo_type[:-1], repo_id)
            if repo is None:
                return
            if action in (None, "revision") and method == "GET":
                return self.reply(200, {"id": repo_id, "sha": repo.head, "private": repo.meta["private"],
                                        "siblings": [{"rfilename": f} for f in repo.paths()]})
            if action == "tree" and method == "GET":
                return self.tree(repo, (rest or "").strip("/"))
            if action in ("preupload", "commit") and method == "POST":
                if not self.authorized:
                    return self.reply(401, {"error": "write access needs a token"})
                return self.preupload(repo) if action == "preupload" else self.commit(repo, repo_type, repo_id)
        m = re.match(r"^/(datasets|spaces)/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", p)
        if m and method in ("GET", "HEAD"):
            repo_type, repo_id, _rev, path = m.groups()
            repo = self.readable(repo_type[:-1], repo_id)
            if repo is None:
                return
            content = repo.read(path)
            if content is None:
                return self.reply(404, {"error": "entry not found"}, head=method == "HEAD",
                                  headers={"X-Error-Code": "EntryNotFound", "X-Repo-Commit": repo.head})
            return self.resolve(repo, content, method)
        self.reply(404, {"error": f"no route {method} {p}"})

    def readable(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.hub.repo(repo_type, repo_id)
        if repo is None or (repo.meta["private"] and not self.authorized):
            self.not_found("RepoNotFound", f"repository {repo_id}")
            return None
        return repo

    def create_repo(self) -> None:
        if not self.authorized:
            return self.reply(401, {"error": "creating a repo needs a token"})
        req = json.loads(self.body())
        repo_type = req.get("type") or "model"
        repo_id = f"{req.get('organization') or self.hub.user}/{req['name']}"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        if self.hub.repo(repo_type, repo_id) is not None:
            return self.reply(409, {"error": "You already created this repo", "url": f"{self.hub.url}/{prefix}{repo_id}"})
        self.hub.create(repo_type, repo_id, req.get("visibility") == "private" or bool(req.get("private")))
        self.reply(200, {"url": f"{self.hub.url}/{prefix}{repo_id}"})

    def tree(self, repo: Repo, path: str) -> None:
        recursive = self.query.get("recursive", ["false"])[0].lower() == "true"
        base = repo.files / path
        if not base.is_dir():
            return self.not_found("EntryNotFound", f"folder {path}")
        entries = []
        for f in sorted(base.rglob("*") if recursive else base.iterdir()):
            rel = f.relative_to(repo.files).as_posix()
            if f.is_dir():
                entries.append({"type": "directory", "oid": hashlib.sha1(rel.encode()).hexdigest(), "path": rel})
            else:
                content = f.read_bytes()
                entries.append({"type": "file", "oid": git_blob_sha(content), "size": len(content), "path": rel})
        self.reply(200, entries)

    def preupload(self, repo: Repo) -> None:
        files = json.loads(self.body())["files"]
        out = []
        for f in files:
            content = repo.read(f["path"])
            out.append({"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                        "oid": git_blob_sha(content) if content is not None else None})
        self.reply(200, {"files": out, "commitOid": repo.head})

    def commit(self, repo: Repo, repo_type: str, repo_id: str) -> None:
        lines = [json.loads(line) for line in self.body().splitlines() if line.strip()]
        sha = self.hub.commit(repo, lines)
        self.reply(200, {"commitUrl": f"{self.hub.url}/{repo_type}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None})

    def resolve(self, repo: Repo, content: bytes, method: str) -> None:
        start = 0
        rng = re.match(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if rng and method == "GET":
            start = int(rng.group(1))
        headers = {"ETag": f'"{git_blob_sha(content)}"', "X-Repo-Commit": repo.head, "Accept-Ranges": "bytes"}
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        self.reply(206 if start else 200, raw=content[start:], headers=headers, head=method == "HEAD")


# huggingface_hub waits up to 1+2+4+8+8 s between its retries and has no setting for it: the CLI run by
# `run_cli_short_retries` caps every sleep of its process at 10 ms (its HTTP traffic is untouched)
SHORT_RETRIES = "import time; s = time.sleep; time.sleep = lambda t: s(min(t, 0.01)); from looplab.cli import main; main()"


def run_cli_short_retries(*args: str, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    from tests.conftest import ROOT

    return subprocess.run([sys.executable, "-c", SHORT_RETRIES, *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0", **env}, cwd=ROOT)
