"""SOPS-encrypted manifests in a session (issue 11, item 4): the real sops CLI
encrypts, `up --decryption-key` hands the age key to Flux, the cluster holds
the decrypted value, and the key is never uploaded or printed."""
from __future__ import annotations

import base64
import re
import subprocess

from tests.e2e.test_plugin import HELLO, failed, get, ok, wait_for

SECRET = """\
apiVersion: v1
kind: Secret
metadata:
  name: sealed
stringData:
  password: hunter2
"""


def encrypt(cluster, tmp_path) -> tuple[str, str]:
    """An age key (file text) and SECRET encrypted for it by the real sops."""
    key = tmp_path / "age.txt"
    subprocess.run([str(cluster.bin_dir / "age-keygen"), "-o", str(key)], check=True,
                   capture_output=True)
    recipient = re.search(r"public key: (age1\w+)", key.read_text()).group(1)
    plain = tmp_path / "plain.yaml"
    plain.write_text(SECRET)
    sealed = subprocess.run([str(cluster.bin_dir / "sops"), "--encrypt", "--age", recipient,
                             "--encrypted-regex", "^(data|stringData)$", str(plain)],
                            check=True, capture_output=True, text=True).stdout
    return key.read_text(), sealed


def test_sops_secret_is_decrypted_in_the_cluster(cluster, kubectl, namespace, tmp_path):
    key_text, sealed = encrypt(cluster, tmp_path)
    app = tmp_path / "app"
    app.mkdir()
    (app / "secret.yaml").write_text(sealed)
    (app / "configmap.yaml").write_text((HELLO / "configmap.yaml").read_text())
    key = tmp_path / "keys" / "age.agekey"
    key.parent.mkdir()
    key.write_text(key_text)
    # without the key: a warning naming the file, and Flux fails on it
    res = ok(cluster, "up", str(app), "-n", namespace, "--no-wait")
    assert "secret.yaml: SOPS-encrypted" in res.stderr and "--decryption-key" in res.stderr
    res = ok(cluster, "up", str(app), "-n", namespace, "--decryption-key", str(key))
    secret = wait_for("the decrypted Secret", lambda: get(kubectl, "secret", "sealed", namespace))
    assert base64.b64decode(secret["data"]["password"]) == b"hunter2"
    private = re.search(r"AGE-SECRET-KEY-1\w+", key_text).group()
    assert private not in res.stdout + res.stderr
    stored = get(kubectl, "secret", "gitops-run-app-sops", namespace)
    assert private in base64.b64decode(stored["data"]["identity.agekey"]).decode()
    # a later sync without the flag keeps decrypting, and says nothing about it
    (app / "configmap.yaml").write_text((HELLO / "configmap.yaml").read_text().replace(
        "Hello from", "Hello again from"))
    res = ok(cluster, "sync", "app", "-n", namespace)
    assert "SOPS" not in res.stderr
    ok(cluster, "down", "app", "-n", namespace)
    assert get(kubectl, "secret", "gitops-run-app-sops", namespace) is None


def test_decryption_key_must_be_an_age_key(cluster, namespace, tmp_path):
    bogus = tmp_path / "key.txt"
    bogus.write_text("not a key\n")
    line = failed(cluster, "up", str(HELLO), "-n", namespace, "--decryption-key", str(bogus),
                  code=2)
    assert "not an age key file" in line and "age-keygen" in line
