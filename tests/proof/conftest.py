"""Fixtures of the proof suite: moto's S3 server on 127.0.0.1 and test AWS credentials."""

from tests.storage.conftest import aws_env, moto_endpoint

__all__ = ["aws_env", "moto_endpoint"]
