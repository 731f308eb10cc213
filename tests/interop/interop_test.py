#!/usr/bin/python3
"""Interop: a third-party gRPC stack (Debian's python3-grpcio) talks to elexirion-server.

Stubs are generated from our proto at test time with the system protoc and gRPC's Python
plugin. Health and reflection are called with raw bytes (their protos are not ours to ship).

usage: interop_test.py SOURCE_DIR BINARY_DIR
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

SOURCE_DIR, BINARY_DIR = sys.argv[1], sys.argv[2]
del sys.argv[1:3]

import grpc  # noqa: E402


def generate_stubs(out_dir):
    os.makedirs(out_dir, exist_ok=True)
    proto_dir = os.path.join(SOURCE_DIR, "proto")
    protos = [os.path.join(proto_dir, "elexirion", "v1", f)
              for f in sorted(os.listdir(os.path.join(proto_dir, "elexirion", "v1")))
              if f.endswith(".proto")]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out", out_dir, "--grpc_out", out_dir,
                    "--plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin", *protos],
                   check=True)
    sys.path.insert(0, out_dir)


def read_varint(data, pos):
    result, shift = 0, 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def fields(data):
    """Yields (field_number, wire_type, value) of a protobuf message (varint and bytes)."""
    pos = 0
    while pos < len(data):
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(data, pos)
        elif wire == 2:
            length, pos = read_varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        else:
            raise ValueError("unexpected wire type %d" % wire)
        yield number, wire, value


class ServerProcess:
    def __init__(self, tmp):
        binary = os.path.join(BINARY_DIR, "server", "app", "elexirion-server")
        self.log_path = os.path.join(tmp, "server.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, "--grpc.listen=127.0.0.1:0", "--http.listen=",
             "--store.sqlite_path=" + os.path.join(tmp, "db.sqlite")],
            stderr=self.log, stdout=self.log)
        deadline = time.time() + 20
        self.port = None
        while time.time() < deadline and self.port is None:
            if self.proc.poll() is not None:
                raise RuntimeError("server exited: " + open(self.log_path).read())
            for line in open(self.log_path):
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if entry.get("msg") == "serving":
                    self.port = entry["grpc_port"]
            time.sleep(0.02)
        if self.port is None:
            raise RuntimeError("server did not start: " + open(self.log_path).read())

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


class InteropTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        generate_stubs(os.path.join(cls.tmp.name, "stubs"))
        cls.server = ServerProcess(cls.tmp.name)
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.server.port)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        rc = cls.server.stop()
        cls.tmp.cleanup()
        assert rc == 0, "server exit code %d" % rc

    def test_health_check_serving(self):
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=lambda b: b,
                                         response_deserializer=lambda b: b)
        # HealthCheckRequest{service: ""} is empty; SERVING is field 1 = 1.
        self.assertEqual(check(b"", timeout=10), b"\x08\x01")

    def test_list_jobs(self):
        from elexirion.v1 import jobs_pb2, jobs_pb2_grpc
        stub = jobs_pb2_grpc.OptimizerServiceStub(self.channel)
        response = stub.ListJobs(jobs_pb2.ListJobsRequest(page_size=10), timeout=10)
        self.assertEqual(len(response.jobs), 0)
        self.assertEqual(response.next_page_token, "")

    def test_error_codes_cross_stacks(self):
        from elexirion.v1 import jobs_pb2, jobs_pb2_grpc
        stub = jobs_pb2_grpc.OptimizerServiceStub(self.channel)
        with self.assertRaises(grpc.RpcError) as ctx:
            stub.GetJob(jobs_pb2.GetJobRequest(id="missing"), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)
        with self.assertRaises(grpc.RpcError) as ctx:
            stub.GetJob(jobs_pb2.GetJobRequest(), timeout=10)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("id", ctx.exception.details())

    def test_reflection_lists_our_services(self):
        info = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        # ServerReflectionRequest{list_services: ""}: field 7, length 0.
        responses = list(info(iter([b"\x3a\x00"]), timeout=10))
        self.assertEqual(len(responses), 1)
        names = []
        for number, _, value in fields(responses[0]):
            if number == 6:  # list_services_response
                for _, _, service in fields(value):
                    for n, _, name in fields(service):
                        if n == 1:
                            names.append(name.decode())
        for expected in ["elexirion.v1.OptimizerService", "elexirion.v1.PipelineService",
                         "elexirion.v1.ProgramService", "elexirion.v1.DatasetService",
                         "elexirion.v1.TelemetryService", "grpc.health.v1.Health"]:
            self.assertIn(expected, names)


if __name__ == "__main__":
    result = unittest.main(exit=False, verbosity=2).result
    sys.exit(0 if result.wasSuccessful() else 1)
