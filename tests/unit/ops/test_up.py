"""up: a namespace being deleted is said as what it is, with the way out."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.core import manifests
from kubectl_gitops_run.errors import ApiError, UserError
from kubectl_gitops_run.ops.up import _apply_bucket_server

TERMINATING = ('forbidden: cannot patch secrets "gitops-run-web" in namespace "dev": secrets '
               '"gitops-run-web" is forbidden: unable to create new content in namespace dev '
               'because it is being terminated')


class TerminatingNamespace:
    namespace = "dev"

    def get(self, kind, name, namespace=None, **_):
        return None

    def apply(self, obj):
        raise ApiError(TERMINATING, 403)


def test_a_namespace_being_deleted_is_said_so():
    spec = manifests.Spec(name="web", namespace="dev", source="/src", host="h", user="u")
    with pytest.raises(UserError) as e:
        _apply_bucket_server(TerminatingNamespace(), spec, force=False)
    assert str(e.value) == ("namespace 'dev' is being deleted; wait until it is gone and create "
                            "it again, or pick another with -n")
