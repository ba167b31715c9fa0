"""go-plugin's side of the handshake: serve a provider over gRPC with AutoMTLS on a unix socket.

Terraform starts the plugin with `TF_PLUGIN_MAGIC_COOKIE` and, for automatic TLS, its own client
certificate in `PLUGIN_CLIENT_CERT`. The plugin answers on stdout with one line,
`1|6|unix|<socket>|grpc|<base64 server cert>`, then serves until Terraform calls Shutdown.
"""

from __future__ import annotations

import base64
import datetime
import functools
import os
import sys
import tempfile
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.fakegcp.protocol import plugin_pb, plugin_services, services

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"


@functools.cache
def _server_certificate() -> tuple[bytes, bytes, bytes]:
    """A throwaway self-signed CA certificate for `localhost`, as go-plugin's own servers make (once per process:
    the providers a zygote forks share the one it made, valid for a day)."""
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp"),
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        ]
    )
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=True,
                key_agreement=True,
                key_cert_sign=True,
                content_commitment=False,
                data_encipherment=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert.public_bytes(serialization.Encoding.DER)


class _Controller(plugin_services.GRPCControllerServicer):
    def __init__(self, stop: threading.Event):
        self.stop = stop

    def Shutdown(self, request, context):
        self.stop.set()
        return plugin_pb.Empty()


class _Stdio(plugin_services.GRPCStdioServicer):
    def StreamStdio(self, request, context):
        return iter(())


def serve(provider: Any) -> None:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.exit("This binary is a plugin. It is not meant to be executed directly: terraform starts it.")
    stop = threading.Event()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    services.add_ProviderServicer_to_server(provider, server)
    plugin_services.add_GRPCControllerServicer_to_server(_Controller(stop), server)
    plugin_services.add_GRPCStdioServicer_to_server(_Stdio(), server)

    with tempfile.TemporaryDirectory(prefix="fakegcp-plugin-") as tmp:
        socket = Path(tmp) / "plugin.sock"
        client_cert = os.environ.get("PLUGIN_CLIENT_CERT")
        if client_cert:
            key_pem, cert_pem, cert_der = _server_certificate()
            # Terraform verifies the server against the certificate in the handshake line. Its client
            # certificate is not checked back: the socket lives in a private temporary directory.
            credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
            server.add_secure_port(f"unix:{socket}", credentials)
            encoded_cert = base64.b64encode(cert_der).decode().rstrip("=")
        else:
            server.add_insecure_port(f"unix:{socket}")
            encoded_cert = ""
        server.start()
        sys.stdout.write(f"1|6|unix|{socket}|grpc|{encoded_cert}\n")
        sys.stdout.flush()
        try:
            while not stop.wait(0.05):
                pass
        except KeyboardInterrupt:
            pass
        server.stop(grace=0.2)
