"""sessions: a session that is not there is said with the way out."""
from __future__ import annotations

import pytest

from kubectl_gitops_run.errors import UserError
from kubectl_gitops_run.ops.sessions import resolve


class EmptyNamespace:
    namespace = "dev"

    def get(self, kind, name, namespace=None, **_):
        return None

    def list(self, kind, namespace, selector=None, **_):
        return []


def test_an_unknown_session_names_the_way_out():
    with pytest.raises(UserError) as e:
        resolve(EmptyNamespace(), "nope", "/src")
    assert str(e.value) == ("session 'nope' not found in namespace 'dev' (it has no sessions); "
                            "check the name and -n, or start it with `kubectl gitops-run up DIR`")
