#!/usr/bin/python3
"""The verifier service driven by a gRPC client in another language: Python's grpcio.

python_client_test.sh starts `tracemark serve` (plaintext, loopback), generates this client's
message and stub modules from proto/tracemark/v1/verifier.proto with protoc and Debian's
grpc_python_plugin, then runs this script against the server. Every check prints one line,
"ok - WHAT" or "FAIL - WHAT: DETAIL"; the shell script counts them and prints the summary. The
exit status is non-zero if any check failed.

  /usr/bin/python3 python_client_test.py --port PORT --generated DIR --key k.key \
      --harvest harvest.jsonl --majority-account 3 --out DIR [--long-input big.jsonl]
"""

import argparse
import hashlib
import json
import os
import sys
import time
import traceback

import grpc

SUBMIT = "tok-submit-0123456789"
READ = "tok-reader-0123456789"
UNKNOWN = "tok-nobody-0123456789"
# Seconds for every unary call: a hung server fails the test instead of stalling it. Sanitizer
# builds run many times slower; scripts/sanitize.sh scales the bounds with TRACEMARK_TIME_SCALE.
TIME_SCALE = float(os.environ.get("TRACEMARK_TIME_SCALE", "1"))
TIMEOUT = 30 * TIME_SCALE

passed = 0
failed = 0


class Abort(Exception):
    """A check whose failure leaves nothing for the later checks to test."""


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}", flush=True)
    else:
        failed += 1
        print(f"FAIL - {what}: {detail}", flush=True)
    return ok


def require(what, ok, detail=""):
    if not check(what, ok, detail):
        raise Abort(what)


def auth(token):
    return [("authorization", f"Bearer {token}")] if token is not None else []


def expect_code(what, code, call):
    """Runs call(); checks that it fails with the gRPC status `code`."""
    try:
        reply = call()
    except grpc.RpcError as e:
        return check(what, e.code() == code, f"got {e.code().name}: {e.details()}")
    return check(what, False, f"succeeded, expected {code.name}: {str(reply)[:200]!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--generated", required=True, help="protoc's output directory")
    ap.add_argument("--key", required=True, help="the server's master key file (32 bytes)")
    ap.add_argument("--harvest", required=True, help="the JSONL dataset to upload")
    ap.add_argument("--majority-account", type=int, required=True,
                    help="the account that produced most of the harvest's documents")
    ap.add_argument("--out", required=True, help="where the report and public key are written")
    ap.add_argument("--long-input", help="a dataset that takes the server a few seconds to scan")
    args = ap.parse_args()

    sys.path.insert(0, args.generated)
    from tracemark.v1 import verifier_pb2 as pb  # pylint: disable=import-outside-toplevel
    from tracemark.v1 import verifier_pb2_grpc as pbg  # pylint: disable=import-outside-toplevel

    channel = grpc.insecure_channel(f"127.0.0.1:{args.port}")
    grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
    stub = pbg.VerifierStub(channel)
    submitter, reader = auth(SUBMIT), auth(READ)

    # 1. The standard health service, called generically: an empty HealthCheckRequest (service ""
    # means the whole server) serialises to no bytes; the reply b"\x08\x01" is field 1 (status) as
    # a varint (tag 0x08 = field 1 << 3 | wire type 0) with value 1, ServingStatus.SERVING.
    health = channel.unary_unary("/grpc.health.v1.Health/Check",
                                 request_serializer=lambda _: b"",
                                 response_deserializer=bytes)
    reply = health(None, timeout=TIMEOUT)
    check("health check reports SERVING", reply == b"\x08\x01", f"got {reply!r}")

    # Reflection is off unless the server is started with --reflection. A ServerReflectionRequest
    # asking to list the services is field 7 (list_services, a string) empty: tag 0x3a, length 0.
    reflect = channel.stream_stream(
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        request_serializer=lambda b: b, response_deserializer=bytes)
    expect_code("reflection is off by default (UNIMPLEMENTED)", grpc.StatusCode.UNIMPLEMENTED,
                lambda: list(reflect(iter([b"\x3a\x00"]), timeout=TIMEOUT)))

    # 2. Tokens and roles.
    expect_code("GetKeys without a token is UNAUTHENTICATED", grpc.StatusCode.UNAUTHENTICATED,
                lambda: stub.GetKeys(pb.GetKeysRequest(), timeout=TIMEOUT))
    expect_code("GetKeys with an unknown token is UNAUTHENTICATED",
                grpc.StatusCode.UNAUTHENTICATED,
                lambda: stub.GetKeys(pb.GetKeysRequest(), metadata=auth(UNKNOWN),
                                     timeout=TIMEOUT))
    expect_code("GetKeys with a malformed authorization header is UNAUTHENTICATED",
                grpc.StatusCode.UNAUTHENTICATED,
                lambda: stub.GetKeys(pb.GetKeysRequest(), metadata=[("authorization", SUBMIT)],
                                     timeout=TIMEOUT))

    data = open(args.harvest, "rb").read()
    lines = data.count(b"\n")
    sha = hashlib.sha256(data).hexdigest()

    def request(request_id="", name="harvest.jsonl", size=None, sha256=sha, label="python",
                account_limit=100):
        return pb.ScanRequest(
            request_id=request_id, label=label,
            parameters=pb.ScanParameters(account_limit=account_limit),
            uploads=[pb.UploadedFile(name=name, size=len(data) if size is None else size,
                                     sha256=sha256)])

    def messages(req, payload=data, chunk=1000):
        if req is not None:
            yield pb.SubmitScanRequest(request=req)
        for i in range(0, len(payload), chunk):
            yield pb.SubmitScanRequest(chunk=pb.InputChunk(file=0, data=payload[i:i + chunk]))

    def submit(req, metadata=submitter, payload=data):
        return stub.SubmitScan(messages(req, payload), metadata=metadata, timeout=TIMEOUT)

    expect_code("SubmitScan with the read token is PERMISSION_DENIED",
                grpc.StatusCode.PERMISSION_DENIED, lambda: submit(request("py-denied"), reader))

    # 3. The keys: public identifiers only, never the key bytes.
    keys = stub.GetKeys(pb.GetKeysRequest(), metadata=submitter, timeout=TIMEOUT)
    hexdigits = set("0123456789abcdef")
    check("GetKeys: master_key_id is 16 hex digits",
          len(keys.master_key_id) == 16 and set(keys.master_key_id) <= hexdigits,
          repr(keys.master_key_id))
    check("GetKeys: master_key_commitment is 64 hex digits",
          len(keys.master_key_commitment) == 64 and set(keys.master_key_commitment) <= hexdigits,
          repr(keys.master_key_commitment))
    check("GetKeys: the signing public key is 64 hex digits",
          len(keys.signing_public_key) == 64 and set(keys.signing_public_key) <= hexdigits,
          repr(keys.signing_public_key))
    check("GetKeys: the server's epochs 0-15 are offered, each with its own key id",
          [e.epoch for e in keys.epochs] == list(range(16))
          and len({e.key_id for e in keys.epochs}) == 16
          and all(len(e.key_id) == 16 and set(e.key_id) <= hexdigits for e in keys.epochs),
          str([(e.epoch, e.key_id) for e in keys.epochs]))
    key = open(args.key, "rb").read()
    require("the master key file holds 32 bytes", len(key) == 32, f"{len(key)} bytes")
    wire = keys.SerializeToString()
    leaked = [form for form, needle in (("raw", key), ("hex", key.hex().encode()),
                                        ("HEX", key.hex().upper().encode()))
              if needle in wire]
    check("GetKeys: the reply holds no form of the master key", not leaked, f"found {leaked}")

    # 4. A scan, the dataset streamed in 1000-byte chunks after the request.
    first = submit(request("py-1"))
    require("SubmitScan returns a scan id 'scan-...'", first.id.startswith("scan-"), first.id)
    check("SubmitScan: the scan is queued, running or succeeded",
          first.state in (pb.QUEUED, pb.RUNNING, pb.SUCCEEDED), pb.ScanState.Name(first.state))
    check("SubmitScan: owner, label and request id are recorded",
          (first.owner, first.label, first.request_id) == ("alice", "python", "py-1"),
          f"{first.owner!r} {first.label!r} {first.request_id!r}")
    check("SubmitScan: the upload is recorded with its size and SHA-256",
          [(f.name, f.bytes, f.sha256) for f in first.inputs] == [("harvest.jsonl", len(data),
                                                                    sha)],
          str(list(first.inputs)))

    # 5. Idempotent resubmission.
    again = submit(request("py-1"))
    check("resubmitting with the same request_id returns the same scan", again.id == first.id,
          f"{again.id} != {first.id}")

    # 6. Watched until final.
    watched = []
    started = time.monotonic()
    try:
        for s in stub.WatchScan(pb.WatchScanRequest(id=first.id), metadata=reader, timeout=60 * TIME_SCALE):
            watched.append(s)
    except grpc.RpcError as e:
        check("WatchScan streams until the scan is final", False,
              f"{e.code().name}: {e.details()}")
    require("WatchScan sent at least one message", watched, "none")
    last = watched[-1]
    print(f"   watched {len(watched)} message(s) in {time.monotonic() - started:.1f} s: "
          + " ".join(pb.ScanState.Name(s.state) for s in watched), flush=True)
    require("WatchScan: the last message is SUCCEEDED", last.state == pb.SUCCEEDED,
            f"{pb.ScanState.Name(last.state)} {last.error}")
    check("WatchScan: only the last message is final",
          all(s.state in (pb.QUEUED, pb.RUNNING) for s in watched[:-1]),
          " ".join(pb.ScanState.Name(s.state) for s in watched))
    check(f"progress.documents is the number of lines ({lines})",
          last.progress.documents == lines, str(last.progress.documents))
    summary = last.summary
    accounts = [(a.account, a.documents, a.combined_p_value.text) for a in summary.accounts]
    print(f"   provider p = {summary.provider_p_value.text} (log10 "
          f"{summary.provider_p_value.log10:.1f}); accounts {accounts}", flush=True)
    check("summary: the provider p-value's log10 is below -10",
          summary.provider_p_value.log10 < -10, summary.provider_p_value.text)
    # The accounts come most significant first, which need not be the one with most documents
    # (a key decides the p-values): the account with most attributed documents is the majority.
    most = max(accounts, key=lambda a: a[1]) if accounts else None
    check(f"summary: account {args.majority_account}, which produced most documents, has the most "
          "attributed", most is not None and most[0] == args.majority_account, str(accounts))
    check("the succeeded scan has a report", last.has_report)
    full = stub.GetScan(pb.GetScanRequest(id=first.id, include_result_json=True),
                        metadata=reader, timeout=TIMEOUT)
    try:
        result = json.loads(full.result_json)
        check("GetScan(include_result_json) with the read token returns the result as JSON",
              isinstance(result, dict) and result, full.result_json[:200])
    except ValueError as e:
        check("GetScan(include_result_json) returns the result as JSON", False, str(e))

    # 7. The signed report: the envelope for `tracemark report verify` (run by the shell script),
    # and the Markdown rendering.
    report = stub.GetReport(pb.GetReportRequest(id=first.id, format=pb.ENVELOPE),
                            metadata=reader, timeout=TIMEOUT)
    try:
        envelope = json.loads(report.content)
    except ValueError as e:
        envelope = {}
        check("GetReport(ENVELOPE) is JSON", False, str(e))
    check("GetReport(ENVELOPE): payloadType is application/vnd.tracemark.report+json",
          envelope.get("payloadType") == "application/vnd.tracemark.report+json",
          str(envelope.get("payloadType")))
    check("GetReport: signed by the key GetKeys names",
          (report.signing_key_id, report.signing_public_key)
          == (keys.signing_key_id, keys.signing_public_key),
          f"{report.signing_key_id} {report.signing_public_key}")
    with open(f"{args.out}/report.json", "wb") as f:
        f.write(report.content)
    with open(f"{args.out}/public-key", "w", encoding="ascii") as f:
        f.write(report.signing_public_key + "\n")
    markdown = stub.GetReport(pb.GetReportRequest(id=first.id, format=pb.MARKDOWN),
                              metadata=reader, timeout=TIMEOUT)
    check("GetReport(MARKDOWN) says 'Signature: valid'",
          b"Signature: valid" in markdown.content, markdown.content[:200])

    # 8. Listings: a client's own scans; a reader's own (none); everyone's.
    def listed(metadata, all_owners=False):
        r = stub.ListScans(pb.ListScansRequest(all_owners=all_owners), metadata=metadata,
                           timeout=TIMEOUT)
        return [s.id for s in r.scans]

    mine = listed(submitter)
    check("ListScans with the submit token lists the scan (once)", mine == [first.id], str(mine))
    theirs = listed(reader)
    check("ListScans with the read token lists none of its own", theirs == [], str(theirs))
    everyone = listed(reader, all_owners=True)
    check("ListScans with the read token and all_owners lists the scan",
          everyone == [first.id], str(everyone))

    # 9. Cancelling and looking up.
    expect_code("CancelScan with the read token is PERMISSION_DENIED",
                grpc.StatusCode.PERMISSION_DENIED,
                lambda: stub.CancelScan(pb.CancelScanRequest(id=first.id), metadata=reader,
                                        timeout=TIMEOUT))
    cancelled = stub.CancelScan(pb.CancelScanRequest(id=first.id), metadata=submitter,
                                timeout=TIMEOUT)
    check("CancelScan of a finished scan leaves it SUCCEEDED",
          cancelled.state == pb.SUCCEEDED and not cancelled.cancel_requested
          and cancelled.finished_unix_ms == last.finished_unix_ms,
          f"{pb.ScanState.Name(cancelled.state)} cancel_requested={cancelled.cancel_requested}")
    expect_code("GetScan of an unknown id is NOT_FOUND", grpc.StatusCode.NOT_FOUND,
                lambda: stub.GetScan(pb.GetScanRequest(id="scan-0000000000000000"),
                                     metadata=reader, timeout=TIMEOUT))
    expect_code("WatchScan of an unknown id is NOT_FOUND", grpc.StatusCode.NOT_FOUND,
                lambda: list(stub.WatchScan(pb.WatchScanRequest(id="scan-0000000000000000"),
                                            metadata=reader, timeout=TIMEOUT)))

    # 10. Bad uploads.
    expect_code("SubmitScan whose first message is a chunk is INVALID_ARGUMENT",
                grpc.StatusCode.INVALID_ARGUMENT, lambda: submit(None))
    expect_code("SubmitScan sending more bytes than declared is INVALID_ARGUMENT",
                grpc.StatusCode.INVALID_ARGUMENT,
                lambda: submit(request("py-long", size=len(data) - 10)))
    expect_code("SubmitScan sending fewer bytes than declared is INVALID_ARGUMENT",
                grpc.StatusCode.INVALID_ARGUMENT,
                lambda: submit(request("py-short", size=len(data) + 10)))
    expect_code("SubmitScan of an upload named with a '/' is INVALID_ARGUMENT",
                grpc.StatusCode.INVALID_ARGUMENT,
                lambda: submit(request("py-slash", name="dir/harvest.jsonl")))
    expect_code("SubmitScan of an upload with a wrong SHA-256 is DATA_LOSS",
                grpc.StatusCode.DATA_LOSS, lambda: submit(request("py-sha", sha256="0" * 64)))
    mine = listed(submitter)
    check("the refused submissions created no scan", mine == [first.id], str(mine))

    # 11. A deadline, and cancelling: with the server's one worker busy on a long scan (16 epochs
    # of a dataset that takes one scan thread 10 to 30 s), a second scan stays queued; a watch of
    # it with a 0.5 s deadline gets its first message and then DEADLINE_EXCEEDED. Then both are
    # cancelled: the queued one at once, the running one within about a second.
    if args.long_input:
        long_data = open(args.long_input, "rb").read()
        long_req = pb.ScanRequest(
            request_id="py-long-scan", label="long",
            parameters=pb.ScanParameters(account_limit=100, epochs="0-15"),
            uploads=[pb.UploadedFile(name="long.jsonl", size=len(long_data))])
        long_scan = stub.SubmitScan(messages(long_req, long_data, chunk=1 << 20),
                                    metadata=submitter, timeout=TIMEOUT)
        queued = submit(request("py-queued"))
        check("a scan behind a running one is QUEUED", queued.state == pb.QUEUED,
              pb.ScanState.Name(queued.state))
        got = []
        started = time.monotonic()
        try:
            for s in stub.WatchScan(pb.WatchScanRequest(id=queued.id), metadata=reader,
                                    timeout=0.5):
                got.append(s)
            check("WatchScan with a 0.5 s deadline on a queued scan is DEADLINE_EXCEEDED", False,
                  "the stream ended without an error: "
                  + " ".join(pb.ScanState.Name(s.state) for s in got))
        except grpc.RpcError as e:
            took = time.monotonic() - started
            check("WatchScan with a 0.5 s deadline on a queued scan is DEADLINE_EXCEEDED",
                  e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and took < 5 * TIME_SCALE,
                  f"{e.code().name} after {took:.1f} s: {e.details()}")
        check("WatchScan sent the queued scan's state before the deadline",
              [s.state for s in got] == [pb.QUEUED],
              " ".join(pb.ScanState.Name(s.state) for s in got))
        c = stub.CancelScan(pb.CancelScanRequest(id=queued.id), metadata=submitter,
                            timeout=TIMEOUT)
        check("CancelScan of a queued scan cancels it at once", c.state == pb.CANCELLED,
              pb.ScanState.Name(c.state))
        running = stub.GetScan(pb.GetScanRequest(id=long_scan.id), metadata=submitter,
                               timeout=TIMEOUT)
        check("the long scan is still running", running.state == pb.RUNNING,
              f"{pb.ScanState.Name(running.state)} {running.error}")
        stub.CancelScan(pb.CancelScanRequest(id=long_scan.id), metadata=submitter,
                        timeout=TIMEOUT)
        started = time.monotonic()
        final = None
        for s in stub.WatchScan(pb.WatchScanRequest(id=long_scan.id), metadata=submitter,
                                timeout=30 * TIME_SCALE):
            final = s
        took = time.monotonic() - started
        check("CancelScan of a running scan ends it CANCELLED within a few seconds",
              final is not None and final.state == pb.CANCELLED and took < 5 * TIME_SCALE,
              f"{pb.ScanState.Name(final.state) if final else None} after {took:.1f} s")
        expect_code("GetReport of a cancelled scan is FAILED_PRECONDITION",
                    grpc.StatusCode.FAILED_PRECONDITION,
                    lambda: stub.GetReport(pb.GetReportRequest(id=long_scan.id),
                                           metadata=reader, timeout=TIMEOUT))
    else:
        print("   skipped: the deadline and cancellation checks (no --long-input)", flush=True)
    channel.close()


if __name__ == "__main__":
    try:
        main()
    except Abort as e:
        print(f"   stopped after a failed check ({e}); the later checks were not run",
              flush=True)
    except Exception:  # pylint: disable=broad-except
        check("the client ran without an unexpected error", False, traceback.format_exc())
    sys.exit(1 if failed else 0)
