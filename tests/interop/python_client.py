"""Interop check: Python grpcio talks to occcd exactly as docs/clients.md shows.

Usage: python_client.py SOCKET EXPECTED_OWNER_UID
Prints one JSON object: the daemon's version and the status code of a call
that needs a session.
"""

import json
import os
import stat
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def generate_stubs(out_dir):
    protos = ["occc/v1/system.proto", "occc/v1/audit.proto"]
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(ROOT, "proto"),
         f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", *protos],
        check=True,
    )
    sys.path.insert(0, out_dir)


def main():
    socket_path, expected_uid = sys.argv[1], int(sys.argv[2])
    st = os.lstat(socket_path)
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != expected_uid:
        raise SystemExit(f"{socket_path} is not a socket owned by uid {expected_uid}")
    with tempfile.TemporaryDirectory() as out_dir:
        generate_stubs(out_dir)
        from occc.v1 import audit_pb2, audit_pb2_grpc, system_pb2, system_pb2_grpc

        channel = grpc.insecure_channel(
            f"unix://{socket_path}", options=[("grpc.default_authority", "localhost")]
        )
        info = system_pb2_grpc.SystemStub(channel).GetInfo(system_pb2.GetInfoRequest(), timeout=10)
        try:
            audit_pb2_grpc.AuditStub(channel).VerifyChain(audit_pb2.VerifyChainRequest(), timeout=10)
            refused = "OK"
        except grpc.RpcError as err:
            refused = err.code().name
        print(json.dumps({"version": info.version, "api_version": info.api_version, "verify_chain": refused}))


if __name__ == "__main__":
    main()
