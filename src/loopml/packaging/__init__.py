"""Package a logged model for deployment: a runnable bundle, a Docker build context,
Kubernetes manifests, or an ONNX conversion checked for parity.

    from loopml.packaging.build import build

    result = build("models:/churn/3", "docker", "dist/churn-docker")

:mod:`loopml.packaging.build` dispatches to one module per target (``bundle``, ``docker``,
``k8s``, ``onnx``); the result is a :class:`loopml.packaging.result.BuildResult`.
"""
