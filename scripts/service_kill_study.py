#!/usr/bin/env python3
"""kill -9 durability of the verifier service (docs/service.md).

Starts `tracemark serve`, submits scans (server-side inputs of different sizes, each with its own
request id, as `tracemark remote submit`), and kills the server with SIGKILL at random moments while
scans run, restarting it each time; submissions cut off by a kill are retried with the same request
id, as a client does. At the end every scan must be there exactly once and succeeded, and each
result must equal that of `tracemark scan` run directly on the same input (wall time and input
paths aside).

  scripts/service_kill_study.py --tracemark build/cli/tracemark [--kills 20] [--scans 12]
"""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time


# Sanitizer builds run many times slower; scripts/sanitize.sh scales the time bounds.
TIME_SCALE = float(os.environ.get("TRACEMARK_TIME_SCALE", "1"))

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--tracemark", required=True)
    ap.add_argument("--data-dir", default=os.environ.get("TRACEMARK_DATA_DIR", "data"))
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--scans", type=int, default=12)
    ap.add_argument("--docs", type=int, default=1500, help="documents in the largest input")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    tm = os.path.abspath(a.tracemark)
    data_dir = os.path.abspath(a.data_dir)
    work = tempfile.mkdtemp(prefix="tracemark_kill_study_")
    try:
        return run(a, rng, tm, data_dir, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(a, rng, tm, data_dir, work):
    inputs = os.path.join(work, "inputs")
    os.makedirs(inputs)
    subprocess.run([tm, "keygen", "--out", f"{work}/k.key"], check=True, capture_output=True)
    subprocess.run([tm, "keygen", "--out", f"{work}/s.key"], check=True, capture_output=True)
    with open(f"{work}/tokens", "w") as f:
        f.write("kill-study-token-0123456789 admin study\n")
    env = dict(os.environ, TRACEMARK_TOKEN="kill-study-token-0123456789")

    # Inputs: documents cut from the set-up corpus, in files of different sizes.
    corpus_dir = os.path.join(data_dir, "npm", "sotu", "data")
    texts = []
    for root, _, files in sorted(os.walk(corpus_dir)):
        for name in sorted(files):
            if name.endswith(".txt"):
                with open(os.path.join(root, name), encoding="utf-8", errors="replace") as f:
                    texts.append(f.read())
    if not texts:
        sys.exit(f"no corpus under {corpus_dir}: run scripts/setup.sh")
    docs = [t[i:i + 1500] for t in texts for i in range(0, len(t) - 1500, 1500)]
    files = []
    for k in range(a.scans):
        n = max(5, int(a.docs * (k + 1) / a.scans))
        path = os.path.join(inputs, f"part{k:02d}.jsonl")
        with open(path, "w") as f:
            for j in range(n):
                d = docs[(k * 7919 + j) % len(docs)]
                f.write(json.dumps({"prompt": "Continue.", "completion": d}) + "\n")
        files.append(path)

    def start():
        port_file = f"{work}/port"
        if os.path.exists(port_file):
            os.remove(port_file)
        p = subprocess.Popen(
            [tm, "serve", "--insecure", "--listen", "127.0.0.1:0", "--port-file", port_file,
             "--db", f"{work}/jobs.db", "--key", f"{work}/k.key", "--tokens", f"{work}/tokens",
             "--signing-key", f"{work}/s.key", "--inputs-root", inputs, "--data-dir", data_dir,
             "--workers", "2", "--scan-threads", "1", "--max-attempts", str(a.kills + 5)],
            stdout=subprocess.DEVNULL, stderr=open(f"{work}/serve.log", "a"))
        for _ in range(600):
            if os.path.exists(port_file):
                return p, open(port_file).read().strip()
            if p.poll() is not None:
                sys.exit("the server did not start:\n" + open(f"{work}/serve.log").read())
            time.sleep(0.01)
        sys.exit("the server did not start in 6 s")

    def remote(port, *args, check=True):
        r = subprocess.run([tm, "remote", "--insecure", "--server", f"127.0.0.1:{port}",
                            "--deadline", str(10 * TIME_SCALE), "--json", *args],
                           env=env, capture_output=True, text=True)
        if check and r.returncode != 0:
            raise RuntimeError(r.stderr.strip())
        return r

    def requeued_in_log():
        # The restarted server's first line says how many scans the killed one left running.
        import re
        lines = open(f"{work}/serve.log").read().splitlines()
        starts = [i for i, l in enumerate(lines) if "listening on port" in l]
        last = lines[starts[-2] + 1 if len(starts) > 1 else 0:]
        for l in last:
            m = re.search(r"(\d+) scan\(s\) a previous server left running", l)
            if m:
                return int(m.group(1))
        return 0

    interrupted = []
    t0 = time.time()
    server, port = start()
    ids = {}  # request id -> scan id, as replies came back
    pending = list(range(a.scans))
    kills = 0
    kill_log = []
    while pending or kills < a.kills:
        # Submit what is not yet acknowledged (a retry after a kill reuses the request id).
        for k in list(pending):
            r = remote(port, "submit", "--server-path", files[k], "--accounts", "100",
                       "--request-id", f"kill-study-{k}", "--label", f"part{k:02d}", check=False)
            if r.returncode == 0:
                ids[f"kill-study-{k}"] = json.loads(r.stdout)["id"]
                pending.remove(k)
            else:
                break  # the server is down: kill and restart below deal with it
            if kills < a.kills and rng.random() < 0.15:
                break  # sometimes kill while submissions are still under way
        if kills >= a.kills:
            break
        # A random moment of a running scan: wait until one runs, then up to a second more.
        states = {}
        wait_until = time.time() + 20 * TIME_SCALE  # in time: a sanitizer build's calls are slow
        while time.time() < wait_until:
            r = remote(port, "list", "--all", "--limit", "1000", check=False)
            states = {}
            if r.returncode == 0:
                for s in json.loads(r.stdout).get("scans", []):
                    states[s.get("state", "QUEUED")] = states.get(s.get("state", "QUEUED"), 0) + 1
            if states.get("RUNNING", 0) > 0 or (not pending and states.get("QUEUED", 0) == 0):
                break
            time.sleep(0.05)
        if not pending and states.get("RUNNING", 0) == 0 and states.get("QUEUED", 0) == 0:
            print("every scan finished before the kills did: give more --docs or --scans")
            break
        time.sleep(rng.uniform(0.0, 1.0))
        server.send_signal(signal.SIGKILL)
        server.wait()
        kills += 1
        kill_log.append(states.get("RUNNING", 0))
        print(f"kill {kills:2d}: at {time.time() - t0:6.1f} s; just before it, scans running "
              f"{states.get('RUNNING', 0)}, queued {states.get('QUEUED', 0)}, succeeded "
              f"{states.get('SUCCEEDED', 0)}", flush=True)
        server, port = start()
        interrupted.append(requeued_in_log())
        if kills >= a.kills and not pending:
            break

    # Let every scan finish, then check.
    deadline = time.time() + 600 * TIME_SCALE
    while True:
        scans = json.loads(remote(port, "list", "--all", "--limit", "1000").stdout).get("scans", [])
        if all(s.get("state") in ("SUCCEEDED", "FAILED", "CANCELLED") for s in scans) and \
                len(scans) >= len(ids):
            break
        if time.time() > deadline:
            sys.exit("scans did not finish in 10 minutes")
        time.sleep(0.5)
    server.send_signal(signal.SIGTERM)
    server.wait()
    server, port = start()

    by_id = {s["id"]: s for s in scans}
    lost = [rid for rid, sid in ids.items() if sid not in by_id]
    request_ids = [s.get("request_id") for s in scans]
    duplicated = len(request_ids) - len(set(request_ids))
    unknown = [s["id"] for s in scans if s["id"] not in ids.values()]
    not_succeeded = [s["id"] for s in scans if s.get("state") != "SUCCEEDED"]
    attempts = [int(s.get("attempts", 0)) for s in scans]

    def canonical(result, path):
        result["totals"].pop("seconds", None)
        base = os.path.basename(path)
        for d in result.get("documents", []) + result.get("skipped", []):
            for f in ("source", "id"):
                if isinstance(d.get(f), str) and d[f].startswith(path):
                    d[f] = base + d[f][len(path):]
        return result

    identical = 0
    different = []
    for k, path in enumerate(files):
        sid = ids.get(f"kill-study-{k}")
        if sid is None or sid not in by_id:
            continue
        got = json.loads(json.loads(remote(port, "get", sid, "--result").stdout)["result_json"])
        direct = subprocess.run([tm, "scan", "--json", "--no-progress", "--key", f"{work}/k.key",
                                 "--accounts", "100", "--data-dir", data_dir, "--threads", "1",
                                 os.path.realpath(path)], capture_output=True, text=True, check=True)
        if canonical(got, os.path.realpath(path)) == canonical(json.loads(direct.stdout),
                                                               os.path.realpath(path)):
            identical += 1
        else:
            different.append(sid)
    server.send_signal(signal.SIGTERM)
    server.wait()

    print()
    print(f"kills: {kills}; kills that interrupted a running scan: "
          f"{sum(1 for n in interrupted if n)} (scans interrupted: {sum(interrupted)})")
    print(f"scans submitted: {len(ids)}; in the store: {len(scans)}; lost: {len(lost)}; "
          f"duplicated: {duplicated}; unknown: {len(unknown)}; not succeeded: {len(not_succeeded)}")
    print(f"starts per scan: max {max(attempts)}, mean {sum(attempts) / len(attempts):.2f}")
    print(f"results identical to a direct scan: {identical} of {len(files)}")
    print(f"wall time: {time.time() - t0:.0f} s")
    failed = sum([bool(lost), bool(duplicated), bool(unknown), bool(not_succeeded),
                  identical != len(files), len(ids) != a.scans])
    checks = 6
    ok = failed == 0
    print(f"{checks - failed} passed, {failed} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
