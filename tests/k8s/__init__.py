"""A real Kubernetes API server for tests: kube-apiserver and etcd as local processes.

:mod:`tests.k8s.apiserver` starts and drives them, :mod:`tests.k8s.kopf_process` runs an
operator against them, :mod:`tests.k8s.fixtures` turns that into pytest fixtures (one server
per session, a fresh namespace per test) and :mod:`tests.k8s.wait` polls. Used by
tests/operator and by the Helm/RBAC tests; ``tests/k8s/serve.py`` starts one by hand.
"""
