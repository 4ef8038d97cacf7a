"""The local development stack: the AIR MILES sandbox, the local gateway and their runner."""
