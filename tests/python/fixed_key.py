"""Fixed master keys for the Python tests (their outcomes are then fixed too)."""

import os

import tracemark


def write_key_file(path, secret):
    """Writes `secret` (32 bytes) as a master key file: mode 0600, never over an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secret)
    finally:
        os.close(fd)
    return path


def key_from_bytes(secret, variable):
    """A tracemark.Key holding `secret`, passed through the environment variable `variable`."""
    os.environ[variable] = secret.hex()
    return tracemark.Key.from_env(variable)
