"""Flux's read-only bucket user: its policy and the IAM import that makes it."""
import io
import json
import zipfile

from kubectl_gitops_run.core import bucketreader
from kubectl_gitops_run.core.manifests import SLOTS

CREDS = {"accesskey": "grreader", "secretkey": "s3cret"}


def _files(blob: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return {name: json.loads(zf.read(name)) for name in zf.namelist()}


def test_the_policy_reads_the_two_slots_and_nothing_else():
    [statement] = bucketreader.policy()["Statement"]
    assert statement["Effect"] == "Allow"
    assert sorted(statement["Action"]) == ["s3:GetBucketLocation", "s3:GetObject",
                                           "s3:ListBucket"]
    assert sorted(statement["Resource"]) == sorted(
        [f"arn:aws:s3:::{s}" for s in SLOTS] + [f"arn:aws:s3:::{s}/*" for s in SLOTS])


def test_the_import_holds_the_policy_the_user_and_its_mapping():
    files = _files(bucketreader.iam_import(CREDS))
    assert set(files) == {"iam-assets/policies.json", "iam-assets/users.json",
                          "iam-assets/user_mappings.json"}
    assert files["iam-assets/policies.json"] == {bucketreader.POLICY: bucketreader.policy()}
    assert files["iam-assets/users.json"] == {"grreader": {"secretKey": "s3cret",
                                                           "status": "enabled"}}
    mapping = files["iam-assets/user_mappings.json"]["grreader"]
    assert mapping["policy"] == bucketreader.POLICY and mapping["version"] == 1


def test_import_failures_are_named():
    answer = json.dumps({"added": {"users": ["grreader"]},
                         "failed": {"users": [{"name": "grreader", "error": {}}],
                                    "userPolicies": [{"name": "grreader"}]}}).encode()
    assert bucketreader.import_failures(answer) == ["userPolicies: grreader", "users: grreader"]
    assert bucketreader.import_failures(b'{"added": {"users": ["x"]}}') == []
    assert bucketreader.import_failures(b"") == []
    assert bucketreader.import_failures(b"<html>")[0].startswith("an answer that is not JSON")
