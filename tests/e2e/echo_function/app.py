"""A function for testing the local gateway itself: its answer depends on the path."""

import base64
import os
import time


def lambda_handler(event, context):
    path = event["rawPath"]
    if path == "/raise":
        raise RuntimeError("boom")
    if path == "/slow":
        time.sleep(5)
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
