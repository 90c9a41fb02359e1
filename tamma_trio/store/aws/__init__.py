"""The AWS backend: Amazon SQS hands out work, DynamoDB remembers it (see store.py)."""

from tamma_trio.store.aws.store import SqsStore

__all__ = ["SqsStore"]
