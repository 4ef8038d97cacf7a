"""A function for testing the local gateway itself: its answer depends on the path."""

import base64
import os
import time
from pathlib import Path


def lambda_handler(event, context):
    path = event["rawPath"]
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/exit":
        os._exit(3)
    if path == "/slow":
        time.sleep(30)  # far past the Timeout of the tests' templates
    if path == "/block":
        # Holds its environment until the file named by ?release= exists; makes
        # "<release>.started" first, so the test knows the invocation is running.
        release = Path(event["queryStringParameters"]["release"])
        Path(f"{release}.started").touch()
        while not release.exists():
            time.sleep(0.01)
        return {"statusCode": 200, "body": "released"}
    if path == "/plain" or path.startswith("/items/"):
        return {
            "event": event,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "memory": context.memory_limit_in_mb,
            "env": dict(os.environ),
        }
    if path == "/binary":
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-Extra": "1"},
            "cookies": ["a=1; Path=/", "b=2"],
            "isBase64Encoded": True,
            "body": base64.b64encode(b"\x89PNG\x00\xff").decode(),
        }
    return {"statusCode": 200, "body": "ok"}
