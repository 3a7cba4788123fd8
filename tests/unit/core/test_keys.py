"""Which files hold keys (core.keys): by name, and by their first bytes."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core.keys import KEY_FILES, key_file, sniff


@pytest.mark.parametrize("rel", [
    ".env", "app/.env", ".env.local", "id_rsa", "home/.ssh/id_ed25519", "id_ecdsa_sk",
    "id_rsa.old", "tls.key", "ca.pem", "bundle.p12", "x.pfx", "app.jks", "a.keystore",
    "k.ppk", "sops.agekey", "keys.txt", "kubeconfig", "prod.kubeconfig", "terraform.tfstate",
    "terraform.tfstate.backup", "x/y.tfstate", ".netrc", ".npmrc", ".pypirc",
    ".git-credentials", ".pgpass", ".vault-token", ".dockercfg", ".docker/config.json",
    "a/.docker/config.json", "a/.aws/credentials",
])
def test_key_files_by_name(rel):
    assert key_file(rel)


@pytest.mark.parametrize("rel", [
    "app.yaml", ".env.example", ".env.sample", ".env.template", "id_rsa.pub", "id_ed25519.pub",
    "keys.yaml", "key.yaml", "pem.txt", "config.json", "credentials", "environment",
    "docs/kubeconfig.md", "tfstate",
])
def test_ordinary_files_by_name(rel):
    assert not key_file(rel)


def test_every_entry_says_why():
    assert all(pattern and why for pattern, why in KEY_FILES)


@pytest.mark.parametrize("head, kind", [
    (b"-----BEGIN RSA PRIVATE KEY-----\nMIIE", "private key"),
    (b"\n  -----BEGIN OPENSSH PRIVATE KEY-----\n", "private key"),
    (b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n", "private key"),
    (b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "private key"),
    (b"PuTTY-User-Key-File-3: ssh-ed25519\n", "private key"),
    (b"# created: 2026\n# public key: age1x\nAGE-SECRET-KEY-1ABC2\n", "age key"),
    (b"apiVersion: v1\nclusters: []\nkind: Config\nusers: []\n", "kubeconfig"),
    (b"apiVersion: v1\r\nkind: 'Config'  # x\r\nusers:\r\n- name: u\r\n", "kubeconfig"),
    (b"apiVersion: v1\nkind: Secret\nstringData:\n  k: |\n    -----BEGIN PRIVATE KEY-----\n", None),
    (b"apiVersion: v1\nkind: Secret\ndata:\n  key: AGE-SECRET-KEY-1ABC\n", None),
    (b"apiVersion: v1\nkind: Config\n", None),             # no clusters or users
    (b"kind: ConfigMap\nclusters: []\n", None),
    (b"-----BEGIN CERTIFICATE-----\n", None),
    (b"", None),
])
def test_key_files_by_content(head, kind):
    assert sniff(head) == kind
