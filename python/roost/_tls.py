"""TLS (wss://) for `App.start` and `App.serve`: the certificate chain and private key
files, read before anything is served, and the errors that name the file at fault."""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any

from ._errors import TLSConfigError

#: PEM markers of an encrypted private key: PKCS#8, and the older OpenSSL form.
_ENCRYPTED_MARKERS = (b"-----BEGIN ENCRYPTED PRIVATE KEY-----", b"Proc-Type: 4,ENCRYPTED")

PathArg = str | os.PathLike[str]


@dataclass(frozen=True)
class TlsFiles:
    """A certificate chain and its private key as PEM, and the files they came from."""

    certfile: str
    keyfile: str
    certificate_chain: bytes = field(repr=False)
    private_key: bytes = field(repr=False)

    def error(self, message: str) -> TLSConfigError:
        """The core refused the chain or the key (`message` says which): the error
        naming the file, or both files when the two do not go together."""
        blamed = [
            name
            for name, part in ((self.certfile, "certificate chain"), (self.keyfile, "private key"))
            if part in message
        ] or [self.certfile, self.keyfile]
        reason = message.removeprefix("invalid argument: ")
        return TLSConfigError(f"{' and '.join(map(repr, blamed))}: {reason}", blamed[0])


def load_tls(
    certfile: PathArg | None, keyfile: PathArg | None, password: str | bytes | None
) -> TlsFiles | None:
    """Reads `certfile` and `keyfile` (None, None: no TLS), decrypting an encrypted key
    with `password`.

    Raises:
        TypeError: a path that is not a str or path, a password that is not str or bytes.
        ValueError: one file without the other, a password without a key file.
        TLSConfigError: a file that cannot be read, an encrypted key without its
            password, with a wrong one, or without the `cryptography` package.
    """
    if certfile is None and keyfile is None:
        if password is not None:
            raise ValueError("ssl_keyfile_password is given without ssl_keyfile")
        return None
    if certfile is None or keyfile is None:
        given, missing = ("ssl_certfile", "ssl_keyfile")[:: 1 if keyfile is None else -1]
        raise ValueError(f"{given} is given without {missing}: TLS needs both")
    if password is not None and not isinstance(password, (str, bytes)):
        raise TypeError(
            f"ssl_keyfile_password must be a str or bytes, not {type(password).__name__}"
        )
    cert_path, key_path = _path(certfile, "ssl_certfile"), _path(keyfile, "ssl_keyfile")
    chain, key = _read(cert_path, "ssl_certfile"), _read(key_path, "ssl_keyfile")
    if any(marker in key for marker in _ENCRYPTED_MARKERS):
        key = _decrypt(key, key_path, password)
    return TlsFiles(cert_path, key_path, chain, key)


def _path(value: object, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        if isinstance(path, str):
            return path
    raise TypeError(f"{name} must be a str or os.PathLike path, not {type(value).__name__}")


def _read(path: str, name: str) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError as error:
        raise TLSConfigError(
            f"cannot read {name} {path!r}: {error.strerror or error}", path
        ) from error


def _decrypt(key: bytes, path: str, password: str | bytes | None) -> bytes:
    """The key decrypted, as unencrypted PKCS#8 PEM. The core takes only unencrypted
    keys; decrypting needs the optional `cryptography` package (`roost[tls]`)."""
    if password is None:
        raise TLSConfigError(
            f"ssl_keyfile {path!r} is encrypted: give its password as ssl_keyfile_password",
            path,
        )
    try:
        serialization: Any = importlib.import_module("cryptography.hazmat.primitives.serialization")
    except ImportError:
        raise TLSConfigError(
            f"ssl_keyfile {path!r} is encrypted, and decrypting it needs the 'cryptography' "
            "package (pip install 'roost[tls]'); or decrypt it once with "
            "`openssl pkey -in KEY -out PLAIN_KEY`",
            path,
        ) from None
    secret = password.encode("utf-8") if isinstance(password, str) else password
    try:
        private_key = serialization.load_pem_private_key(key, password=secret)
    except (ValueError, TypeError) as error:
        raise TLSConfigError(
            f"ssl_keyfile {path!r} cannot be decrypted (wrong password, or not a key): {error}",
            path,
        ) from None
    plain: bytes = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return plain
