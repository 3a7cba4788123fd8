"""The S3 client against a real MinIO server (the bucket image's program, run locally)."""
from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from kubectl_gitops_run.adapters.s3 import S3
from kubectl_gitops_run.errors import S3Error
from devcluster import build


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class Minio:
    def __init__(self, url: str, user: str, password: str):
        self.url, self.user, self.password = url, user, password

    def client(self, url: str | None = None) -> S3:
        return S3(url or self.url, self.user, self.password)


@pytest.fixture(scope="module")
def minio(tmp_path_factory):
    exe = build.bin_dir() / "minio"
    if not exe.exists():
        msg = (f"SKIPPING S3 TESTS: no MinIO binary at {exe}; build it with "
               f"`python -m devcluster.build`")
        print(f"\n{'!' * 80}\n{msg}\n{'!' * 80}")
        pytest.skip(msg)
    port, console = free_port(), free_port()
    user, password = "u" + secrets.token_hex(8), secrets.token_hex(20)
    env = dict(os.environ, MINIO_ROOT_USER=user, MINIO_ROOT_PASSWORD=password,
               MINIO_BROWSER="off", MINIO_UPDATE="off")
    data = tmp_path_factory.mktemp("minio")
    log = open(data.parent / f"{data.name}.log", "wb")
    proc = subprocess.Popen([str(exe), "server", str(data), "--quiet",
                             "--address", f"127.0.0.1:{port}",
                             "--console-address", f"127.0.0.1:{console}"],
                            env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{url}/minio/health/ready", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert proc.poll() is None, f"minio exited with {proc.returncode}"
            assert time.monotonic() < deadline, "minio did not become ready in 60s"
            time.sleep(0.1)
        yield Minio(url, user, password)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture
def s3(minio):
    client = minio.client()
    yield client
    client.close()


@pytest.fixture
def bucket(s3):
    name = "t-" + secrets.token_hex(6)
    s3.ensure_bucket(name)
    return name


class Saboteur:
    """A TCP proxy in front of MinIO that resets the next `kills` requests, on
    whatever connection carries them (new or kept alive): after the client sent
    `after_request` bytes (mid-request), or after `after_response` bytes of the
    answer went back (mid-response)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.kills = 0
        self.after_request: int | None = None
        self.after_response: int | None = None
        self.killed = 0
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.socks: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, kills: int, *, after_request: int | None = None,
            after_response: int | None = None) -> None:
        with self.lock:
            self.kills, self.after_request, self.after_response = \
                kills, after_request, after_response

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            conn = {"pair": (client, upstream), "limit": [None, None], "passed": [0, 0]}
            with self.lock:
                self.socks += [client, upstream]
            threading.Thread(target=self._pipe, args=(conn, 0), daemon=True).start()
            threading.Thread(target=self._pipe, args=(conn, 1), daemon=True).start()

    def _pipe(self, conn, direction: int) -> None:
        src, dst = conn["pair"] if direction == 0 else reversed(conn["pair"])
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    if direction == 0 and self.kills > 0 and conn["limit"] == [None, None]:
                        self.kills -= 1
                        conn["limit"] = [self.after_request, self.after_response]
                    limit, passed = conn["limit"][direction], conn["passed"][direction]
                    if limit is not None:
                        conn["passed"][direction] += len(data)
                if limit is not None and passed + len(data) >= limit:
                    dst.sendall(data[:max(limit - passed, 0)])
                    with self.lock:
                        self.killed += 1
                    for s in conn["pair"]:   # reset both ways: SO_LINGER 0, then close;
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                        s.shutdown(socket.SHUT_RD)   # wakes the other pipe's recv first
                        s.close()
                    return
                dst.sendall(data)
        except OSError:
            pass
        for s in conn["pair"]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        for s in self.socks:
            s.close()


@pytest.fixture
def saboteur(minio):
    p = Saboteur(int(minio.url.rsplit(":", 1)[1]))
    yield p
    p.close()


def test_ready(s3):
    assert s3.ready()


def test_ensure_bucket_is_idempotent(s3):
    name = "idem-" + secrets.token_hex(4)
    s3.ensure_bucket(name)
    s3.ensure_bucket(name)
    assert s3.list(name) == {}


def test_put_list_etag_is_md5(s3, bucket):
    files = {"apps/deploy.yaml": b"kind: Deployment\n", "README": b"",
             "big.bin": os.urandom(3 << 20)}
    for key, data in files.items():
        assert s3.put(bucket, key, data, md5(data)) == md5(data)
    assert s3.list(bucket) == {k: md5(v) for k, v in files.items()}


KEYS = ["a b/c d.yaml", "x+y/a+b.yaml", "ünï/cödé.yaml", "日本/語 x.yaml", "emoji/🚀.yaml",
        "we~ird/(x)!'*,;=@$&[].yaml", "pct/100%25.yaml", "q?/h#.yaml", "lt/<&>\".yaml",
        "deep/" + "/".join("d" * 20 for _ in range(10)) + "/f.yaml"]


def test_awkward_keys_roundtrip(s3, bucket):
    for key in KEYS:
        data = key.encode() * 2
        assert s3.put(bucket, key, data, md5(data)) == md5(data)
    assert s3.list(bucket) == {k: md5(k.encode() * 2) for k in KEYS}
    s3.copy(bucket, "copied/" + KEYS[1], bucket, KEYS[2])
    assert s3.list(bucket)["copied/" + KEYS[1]] == md5(KEYS[2].encode() * 2)
    s3.delete(bucket, KEYS)
    assert list(s3.list(bucket)) == ["copied/" + KEYS[1]]


def test_pagination_and_batched_delete_over_1000_keys(s3, bucket):
    keys = [f"many/{i:05d} {'+' if i % 7 == 0 else ''}ü.yaml" for i in range(2345)]
    with ThreadPoolExecutor(16) as pool:
        etags = list(pool.map(lambda k: s3.put(bucket, k, k.encode(), md5(k.encode())), keys))
    assert etags == [md5(k.encode()) for k in keys]
    listed = s3.list(bucket)
    assert len(listed) == len(keys)
    assert listed == {k: md5(k.encode()) for k in keys}
    s3.delete(bucket, keys[:-5])
    assert set(s3.list(bucket)) == set(keys[-5:])
    s3.delete(bucket, keys)           # deleting absent keys is fine
    assert s3.list(bucket) == {}


def test_delete_nothing(s3, bucket):
    s3.delete(bucket, [])


def test_copy_preserves_etag(s3, bucket):
    data = os.urandom(100_000)
    etag = s3.put(bucket, "src/a.yaml", data, md5(data))
    other = "copy-" + secrets.token_hex(4)
    s3.ensure_bucket(other)
    assert s3.copy(other, "dst/b c.yaml", bucket, "src/a.yaml") == etag
    assert s3.copy(bucket, "same/a.yaml", bucket, "src/a.yaml") == etag
    assert s3.list(other) == {"dst/b c.yaml": etag}


def test_copy_of_missing_source_names_it(s3, bucket):
    with pytest.raises(S3Error) as e:
        s3.copy(bucket, "dst", bucket, "no/such key")
    assert e.value.code == "NoSuchKey"
    assert "no/such key" in str(e.value) and "404" in str(e.value)


def test_bad_credentials_give_a_clear_error(minio, bucket):
    bad = S3(minio.url, minio.user, "not-the-secret")
    with pytest.raises(S3Error) as e:
        bad.list(bucket)
    msg = str(e.value)
    assert e.value.status == 403 and e.value.code == "SignatureDoesNotMatch"
    assert bucket in msg and "403" in msg and "SignatureDoesNotMatch" in msg
    assert "access key" in msg and "not-the-secret" not in msg
    unknown = S3(minio.url, "nobody", minio.password)
    with pytest.raises(S3Error) as e:
        unknown.put(bucket, "k", b"x", md5(b"x"))
    assert e.value.code == "InvalidAccessKeyId" and minio.password not in str(e.value)
    assert "s3://" + bucket + "/k" in str(e.value)


def test_missing_bucket(s3):
    with pytest.raises(S3Error) as e:
        s3.list("no-such-bucket-here")
    assert e.value.status == 404 and e.value.code == "NoSuchBucket"
    assert "no-such-bucket-here" in str(e.value)


def test_wrong_md5_is_refused(s3, bucket):
    with pytest.raises(S3Error) as e:
        s3.put(bucket, "k.yaml", b"abc", md5(b"abd"))
    assert e.value.code == "BadDigest" and "k.yaml" in str(e.value)


def test_concurrent_uploads_from_a_thread_pool(s3, bucket):
    blobs = {f"pool/{i}.yaml": os.urandom(1000 + i * 37) for i in range(300)}
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda kv: s3.put(bucket, kv[0], kv[1], md5(kv[1])), blobs.items()))
    assert s3.list(bucket) == {k: md5(v) for k, v in blobs.items()}


def test_connection_killed_mid_request_is_retried(minio, saboteur, bucket):
    s3 = minio.client(saboteur.url)
    data = os.urandom(2 << 20)
    saboteur.arm(2, after_request=100_000)          # two uploads die halfway through the body
    assert s3.put(bucket, "killed/put.bin", data, md5(data)) == md5(data)
    assert saboteur.killed == 2
    keys = [f"killed/{i:04d}.yaml" for i in range(1200)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put(bucket, k, b"x", md5(b"x")), keys))
    saboteur.arm(2, after_response=3000)            # two listing answers cut short
    listed = s3.list(bucket)
    assert len(listed) == 1201 and saboteur.killed == 4
    saboteur.arm(1, after_request=50)               # a batch delete reset in its headers
    s3.delete(bucket, keys)
    assert saboteur.killed == 5
    saboteur.arm(1, after_request=10)
    assert s3.copy(bucket, "killed/copy.bin", bucket, "killed/put.bin") == md5(data)
    saboteur.arm(1, after_request=10)
    s3.ensure_bucket(bucket)
    assert saboteur.killed == 7
    assert set(s3.list(bucket)) == {"killed/put.bin", "killed/copy.bin"}


def test_a_dead_endpoint_fails_clearly_and_fast(bucket):
    s3 = S3(f"http://127.0.0.1:{free_port()}", "k", "secret-value")
    assert not s3.ready()
    t = time.monotonic()
    with pytest.raises(S3Error) as e:
        s3.list(bucket)
    assert time.monotonic() - t < 10
    assert "cannot reach the bucket server" in str(e.value) and bucket in str(e.value)
    assert "secret-value" not in str(e.value)


# ---- streamed uploads ------------------------------------------------------------

def put_file(s3, bucket, key, path, digest=None, size=None) -> str:
    with open(path, "rb") as f:
        data_size = os.fstat(f.fileno()).st_size
        return s3.put(bucket, key, f, digest or md5(open(path, "rb").read()),
                      data_size if size is None else size)


def test_files_stream_up_signed_unsigned_payload(s3, bucket, tmp_path):
    files = {"empty": b"", "small.yaml": b"kind: A\n", "big.bin": os.urandom(5 << 20)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        assert put_file(s3, bucket, f"stream/{name}", tmp_path / name) == md5(data)
    assert s3.list(bucket) == {f"stream/{k}": md5(v) for k, v in files.items()}


def test_a_file_changed_after_hashing_fails_its_md5(s3, bucket, tmp_path):
    (tmp_path / "f.yaml").write_bytes(b"a: 1\n")
    with pytest.raises(S3Error) as e:
        put_file(s3, bucket, "changed.yaml", tmp_path / "f.yaml", digest=md5(b"a: 2\n"))
    assert e.value.code == "BadDigest"
    assert "changed.yaml" not in s3.list(bucket)


class Rewriting:
    """A file that someone rewrites while its first blocks are on their way."""

    def __init__(self, path, at: int, new: bytes):
        self.f, self.path, self.at, self.new = open(path, "rb"), path, at, new

    def tell(self):
        return self.f.tell()

    def seek(self, pos):
        return self.f.seek(pos)

    def read(self, n=-1):
        block = self.f.read(n)
        if self.new:
            with open(self.path, "r+b") as w:
                w.seek(self.at)
                w.write(self.new)
            self.new = b""
        return block


def test_a_file_changing_during_its_upload_fails_its_md5(s3, bucket, tmp_path):
    data = os.urandom(4 << 20)
    (tmp_path / "f.bin").write_bytes(data)
    body = Rewriting(tmp_path / "f.bin", at=3 << 20, new=b"changed")
    with pytest.raises(S3Error) as e:
        s3.put(bucket, "moving.bin", body, md5(data), len(data))
    assert e.value.code == "BadDigest"
    assert "moving.bin" not in s3.list(bucket)


def test_a_file_shrinking_during_its_upload_is_a_changed_file(s3, bucket, tmp_path):
    from kubectl_gitops_run.errors import FileChanged
    data = os.urandom(1 << 20)
    (tmp_path / "f.bin").write_bytes(data[:1000])
    with pytest.raises(FileChanged):
        put_file(s3, bucket, "short.bin", tmp_path / "f.bin", digest=md5(data), size=len(data))
    assert "short.bin" not in s3.list(bucket)
    assert s3.put(bucket, "after.yaml", b"x", md5(b"x")) == md5(b"x")   # the pool still works


def test_a_streamed_upload_killed_mid_body_starts_over(minio, saboteur, bucket, tmp_path):
    s3 = minio.client(saboteur.url)
    data = os.urandom(2 << 20)
    (tmp_path / "f.bin").write_bytes(data)
    saboteur.arm(2, after_request=300_000)
    assert put_file(s3, bucket, "killed/stream.bin", tmp_path / "f.bin") == md5(data)
    assert saboteur.killed == 2
    assert s3.list(bucket)["killed/stream.bin"] == md5(data)


RSS_PROBE = """
import resource, sys
from kubectl_gitops_run.adapters.s3 import S3
url, user, password, bucket, path, digest, size = sys.argv[1:]
s3 = S3(url, user, password)
s3.list(bucket)     # everything imported and connected before measuring
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open(path, "rb") as f:
    assert s3.put(bucket, "huge.bin", f, digest, int(size)) == digest
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
"""


def test_uploading_a_big_file_keeps_memory_flat(minio, s3, bucket, tmp_path):
    size = 200 << 20
    with open(tmp_path / "huge.bin", "wb") as f:      # sparse: 200 MiB of zeros
        f.truncate(size)
    digest = md5(b"\0" * size)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", RSS_PROBE, minio.url, minio.user,
                          minio.password, bucket, str(tmp_path / "huge.bin"), digest, str(size)],
                         capture_output=True, text=True, timeout=300, cwd=root,
                         env={**os.environ, "PYTHONPATH": root})
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 32 * 1024, f"peak RSS grew by {int(out.stdout)} KiB"
    assert s3.list(bucket)["huge.bin"] == digest


def test_flux_reader_may_list_and_read_the_slots_and_nothing_more(minio, s3):
    """Flux's user (core.bucketreader) reads the snapshot slots; it cannot
    write, delete, make buckets or read other buckets; importing twice is fine."""
    from kubectl_gitops_run.core import bucketreader
    from kubectl_gitops_run.core.manifests import SLOTS, new_credentials
    creds = new_credentials()
    slot, other = SLOTS[0], "not-a-slot-" + secrets.token_hex(3)
    for name in (slot, other):
        s3.ensure_bucket(name)
        s3.put(name, "app.yaml", b"kind: ConfigMap\n", md5(b"kind: ConfigMap\n"))
    for _ in range(2):      # idempotent: `up` and a new pod's first sync both import
        answer = s3.admin_put(bucketreader.IMPORT_PATH, bucketreader.iam_import(creds), "import")
        assert bucketreader.import_failures(answer) == []
    reader = S3(minio.url, creds["accesskey"], creds["secretkey"])
    try:
        assert reader.list(slot) == {"app.yaml": md5(b"kind: ConfigMap\n")}
        refused = [lambda: reader.put(slot, "x.yaml", b"x", md5(b"x")),
                   lambda: reader.delete(slot, ["app.yaml"]),
                   lambda: reader.ensure_bucket("new-" + secrets.token_hex(3)),
                   lambda: reader.list(other),
                   lambda: reader.admin_put(bucketreader.IMPORT_PATH,
                                            bucketreader.iam_import(new_credentials()), "import")]
        for call in refused:
            with pytest.raises(S3Error) as e:
                call()
            # a multi-delete answers 200 and refuses each object inside
            assert e.value.status == 403 or e.value.code == "AccessDenied", e.value
    finally:
        reader.close()
    assert s3.list(slot) == {"app.yaml": md5(b"kind: ConfigMap\n")}
