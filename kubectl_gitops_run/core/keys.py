"""Files that hold keys or credentials (pure): never uploaded unless the user
asks, since whatever is uploaded ends up in source-controller's artifact,
readable inside the cluster without auth (docs/architecture.md, invariant 5).

Two tests: the file's name (KEY_FILES, gitignore patterns), and for the
names that say nothing, its first bytes (`sniff`).
"""
from __future__ import annotations

import re

from .gitignore import PatternList, encode, parse_lines

# Each pattern with why it is here; '!' lines keep what an earlier line caught.
KEY_FILES = (
    (".env", "dotenv files hold an app's passwords and tokens"),
    (".env.*", "per-environment dotenv files (.env.local, .env.production)"),
    ("!.env.example", "dotenv templates are meant to be shared"),
    ("!.env.sample", "dotenv templates are meant to be shared"),
    ("!.env.template", "dotenv templates are meant to be shared"),
    ("id_rsa*", "SSH private keys, by ssh-keygen's names"),
    ("id_dsa*", "SSH private keys"),
    ("id_ecdsa*", "SSH private keys (and id_ecdsa_sk)"),
    ("id_ed25519*", "SSH private keys (and id_ed25519_sk)"),
    ("!id_*.pub", "the public halves of SSH keys are not secret"),
    ("*.pem", "PEM files: private keys, often bundled with their certificate"),
    ("*.key", "private keys (tls.key, server.key)"),
    ("*.p12", "PKCS#12 bundles hold a private key"),
    ("*.pfx", "PKCS#12 bundles hold a private key"),
    ("*.jks", "Java key stores"),
    ("*.keystore", "Java and Android key stores"),
    ("*.ppk", "PuTTY private keys"),
    ("*.agekey", "age identities, such as SOPS decryption keys"),
    ("keys.txt", "SOPS's age key file (~/.config/sops/age/keys.txt)"),
    ("kubeconfig", "cluster credentials"),
    ("*.kubeconfig", "cluster credentials"),
    ("*.tfstate", "Terraform state holds every secret it manages"),
    ("*.tfstate.*", "Terraform state backups (terraform.tfstate.backup)"),
    (".netrc", "machine logins and passwords"),
    (".npmrc", "npm registry tokens"),
    (".pypirc", "PyPI upload tokens"),
    (".git-credentials", "git's stored passwords"),
    (".pgpass", "PostgreSQL passwords"),
    (".vault-token", "a HashiCorp Vault token"),
    (".dockercfg", "container registry logins"),
    ("**/.docker/config.json", "container registry logins"),
    ("**/.aws/credentials", "AWS access keys"),
)
_NAMES = PatternList(parse_lines("\n".join(p for p, _ in KEY_FILES)))

# What a file that *is* a key starts with, or holds at the start of a line.
# Manifests that embed a key indent it, so they do not match.
_PRIVATE_KEY = re.compile(rb"\A\s*-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
_PUTTY_KEY = re.compile(rb"\APuTTY-User-Key-File-")
_AGE_KEY = re.compile(rb"^AGE-SECRET-KEY-1[0-9A-Z]+\s*$", re.MULTILINE)
# A kubeconfig: top-level `kind: Config` with clusters or users beside it.
_KUBECONFIG_KIND = re.compile(rb"""^kind:[ \t]*(["']?)Config\1[ \t]*(?:#.*)?\r?$""", re.MULTILINE)
_KUBECONFIG_KEYS = re.compile(rb"^(?:clusters|users):", re.MULTILINE)


def key_file(rel: str) -> bool:
    """Whether the name of the file `rel` ('/'-separated) says it holds keys."""
    return bool(_NAMES.check(encode(rel), False))


def sniff(head: bytes) -> str | None:
    """What kind of key a file that starts with `head` holds, or None."""
    if _PRIVATE_KEY.match(head) or _PUTTY_KEY.match(head):
        return "private key"
    if _AGE_KEY.search(head):
        return "age key"
    if _KUBECONFIG_KIND.search(head) and _KUBECONFIG_KEYS.search(head):
        return "kubeconfig"
    return None
