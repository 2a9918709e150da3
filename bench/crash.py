"""Crash benchmark: kill -9 of a real server during REST enrolments, then check nothing was lost.

    python bench/crash.py [--json] [--rounds 50] [--seed 1] [--per-person 3] [--models-dir D]
                          [--data DIR]

Each round enrols a different LFW person (`--per-person` photos, one request) through
POST /api/people/{name}/examples of a real `facelive serve` subprocess, kills the server with
SIGKILL at a random instant (seeded) while the request runs, checks the gallery file (SQLite
`PRAGMA integrity_check`, people and examples), restarts the server and checks again through
the API: every enrolment answered 2xx before a kill must be there with all its examples (and a
vector each); one cut off is absent or whole, never partial; nobody else appears. Needs
FACELIVE_TEST_DATA (../shared/data) and fetched models. Exit status 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from benchutil import machine

REPO = Path(__file__).resolve().parents[1]
URL_LINE = re.compile(r"https://127\.0\.0\.1:(\d+)/\?token=(\S+)")
GALLERY = "gallery.sqlite3"
START_TIMEOUT_S = 240
# Kills fall uniformly in [0, KILL_SPAN x a typical request): most cut a request off, some
# come after its reply (those must find the enrolment stored).
KILL_SPAN = 1.5


@dataclass
class Server:
    proc: subprocess.Popen[str]
    url: str
    token: str
    lines: list[str] = field(default_factory=list)


def start_server(data_dir: Path, models_dir: str | None) -> Server:
    """`facelive serve` on a free loopback port; waits for the URL line (port and token)."""
    command = [sys.executable, "-m", "facelive.cli_serve", "--host", "127.0.0.1", "--port",
               "0", "--data-dir", str(data_dir)]
    if models_dir:
        command += ["--models-dir", models_dir]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
    for name in ("FACELIVE_PORT", "FACELIVE_HOST", "FACELIVE_TOKEN"):
        env.pop(name, None)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout or []), daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        match = next((m for m in map(URL_LINE.search, list(lines)) if m), None)
        if match:
            return Server(proc, f"https://127.0.0.1:{match.group(1)}", match.group(2), lines)
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("bench: the server did not start:\n" + "".join(lines[-20:]))
        time.sleep(0.1)


def lfw_people(lfw: Path, count: int, per_person: int, seed: int) -> list[list[Path]]:
    """`count` different LFW people with at least `per_person` photos each (seeded choice)."""
    people = [sorted(d.glob("*.jpg")) for d in sorted(lfw.iterdir()) if d.is_dir()]
    people = [photos[:per_person] for photos in people if len(photos) >= per_person]
    if len(people) < count:
        raise SystemExit(f"bench: only {len(people)} LFW people have {per_person} photos")
    return random.Random(seed).sample(people, count)


def enrol(http: requests.Session, server: Server, name: str,
          photos: list[Path]) -> requests.Response:
    files = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in photos]
    return http.post(f"{server.url}/api/people/{quote(name, safe='')}/examples", files=files,
                     headers={"Authorization": f"Bearer {server.token}"}, verify=False,
                     timeout=120)


def enrol_in_background(http: requests.Session, server: Server, name: str,
                        photos: list[Path]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start the request on a thread; the dict gets `reply` and `seconds` if one comes."""
    answer: dict[str, Any] = {}

    def request() -> None:
        sent = time.perf_counter()
        try:
            answer["reply"] = enrol(http, server, name, photos)
            answer["seconds"] = time.perf_counter() - sent
        except requests.RequestException as exc:  # the kill cut the connection
            answer["error"] = exc

    thread = threading.Thread(target=request)
    thread.start()
    return thread, answer


def api_people(http: requests.Session, server: Server) -> dict[str, int]:
    reply = http.get(f"{server.url}/api/people", verify=False, timeout=30)
    reply.raise_for_status()
    return {p["name"]: p["examples"] for p in reply.json()["people"]}


def file_state(path: Path) -> tuple[str, dict[str, int], int]:
    """(integrity_check, name -> examples, examples without a vector) read straight from the
    SQLite file, read-only, while no server runs."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        check = "\n".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
        counts = dict(conn.execute(
            "SELECT p.name, COUNT(e.id) FROM people p LEFT JOIN examples e ON e.person = p.id "
            "GROUP BY p.id"))
        bare = conn.execute("SELECT COUNT(*) FROM examples e WHERE NOT EXISTS "
                            "(SELECT 1 FROM embeddings WHERE example = e.id)").fetchone()[0]
    finally:
        conn.close()
    return check, counts, int(bare)


def stop(server: Server) -> None:
    server.proc.terminate()
    try:
        server.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    people = lfw_people(Path(args.data) / "lfw", args.rounds + 2, args.per_person, args.seed)
    http = requests.Session()
    committed: dict[str, int] = {}  # name -> examples, for every enrolment known stored
    outcomes = {"answered_2xx_before_kill": 0, "cut_off_found_whole": 0,
                "cut_off_found_absent": 0, "answered_4xx": 0}
    problems: list[str] = []
    integrity_failures = 0
    request_s: list[float] = []
    start_s: list[float] = []
    round_s: list[float] = []

    lost = 0  # the most committed examples found missing at any one check

    def check(where: str, found: dict[str, int]) -> None:
        nonlocal lost
        for name, count in committed.items():
            if found.get(name) != count:
                problems.append(f"{where}: {name!r} has {found.get(name)} examples, "
                                f"{count} committed")
        for name in set(found) - set(committed):
            problems.append(f"{where}: {name!r} appeared")
        lost = max(lost, sum(max(0, count - found.get(name, 0))
                             for name, count in committed.items()))

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facelive-crash-") as tmp:
        data_dir = Path(tmp)
        gallery = data_dir / GALLERY
        started = time.perf_counter()
        server = start_server(data_dir, args.models_dir)
        start_s.append(time.perf_counter() - started)
        try:
            # Two enrolments without a kill, the second one the first request after a restart
            # (slower than later ones), like every killed one: it times the kill window.
            for number, photos in enumerate(people[:2]):
                if number:
                    stop(server)
                    server = start_server(data_dir, args.models_dir)
                sent = time.perf_counter()
                reply = enrol(http, server, f"Calibration {photos[0].parent.name}", photos)
                reply.raise_for_status()
                committed[reply.json()["name"]] = reply.json()["examples_added"]
            request_s.append(time.perf_counter() - sent)
            for number, photos in enumerate(people[2:], 1):
                round_began = time.perf_counter()
                name = photos[0].parent.name.replace("_", " ")
                thread, answer = enrol_in_background(http, server, name, photos)
                time.sleep(rng.uniform(0, KILL_SPAN * statistics.median(request_s)))
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait()
                thread.join(timeout=60)
                reply = answer.get("reply")
                if reply is not None:
                    request_s.append(answer["seconds"])
                    if reply.ok:
                        outcomes["answered_2xx_before_kill"] += 1
                        committed[reply.json()["name"]] = reply.json()["examples_added"]
                    else:
                        outcomes["answered_4xx"] += 1

                check_result, in_file, bare = file_state(gallery)
                if check_result != "ok":
                    integrity_failures += 1
                    problems.append(f"round {number}: integrity_check: {check_result}")
                if bare:
                    problems.append(f"round {number}: {bare} examples without a vector")
                cut_off = reply is None and name in in_file
                if cut_off:
                    # Stored although no reply came: it must be whole. Whole means as many
                    # examples as the same photos give when enrolled again.
                    committed[name] = in_file[name]
                check(f"round {number}, file", in_file)

                started = time.perf_counter()
                server = start_server(data_dir, args.models_dir)
                start_s.append(time.perf_counter() - started)
                check(f"round {number}, API", api_people(http, server))
                if reply is None:
                    outcomes["cut_off_found_whole" if cut_off else "cut_off_found_absent"] += 1
                if cut_off:
                    control = enrol(http, server, f"Control {number}", photos)
                    whole = control.json().get("examples_added") if control.ok else None
                    if whole != in_file[name]:
                        problems.append(f"round {number}: {name!r} cut off with "
                                        f"{in_file[name]} of {whole} examples")
                    http.delete(f"{server.url}/api/people/{quote(f'Control {number}')}",
                                headers={"Authorization": f"Bearer {server.token}"},
                                verify=False, timeout=60).raise_for_status()
                round_s.append(time.perf_counter() - round_began)
                if not args.json:
                    print(f"round {number}/{args.rounds}: {round_s[-1]:.1f} s, "
                          f"{len(committed)} enrolments stored, problems {len(problems)}",
                          file=sys.stderr, flush=True)
        finally:
            stop(server)
        check_result, in_file, bare = file_state(gallery)
        if check_result != "ok":
            integrity_failures += 1
            problems.append(f"after the last stop: integrity_check: {check_result}")
        check("after the last stop, file", in_file)

    return {
        "machine": machine(),
        "rounds": args.rounds,
        "seed": args.seed,
        "photos_per_enrolment": args.per_person,
        "kills": outcomes,
        "enrolments_stored": len(committed),
        "examples_stored": sum(committed.values()),
        "committed_examples_lost": lost,
        "integrity_check_failures": integrity_failures,
        "problems": problems,
        "seconds": {
            "total": round(time.perf_counter() - began, 1),
            "per_round_median": round(statistics.median(round_s), 2) if round_s else None,
            "server_start_median": round(statistics.median(start_s), 2),
            # The first enrolment after a start, which is what every kill interrupts.
            "enrol_request_median": round(statistics.median(request_s), 3),
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--rounds", type=int, default=50, help="kills (one per enrolment)")
    parser.add_argument("--seed", type=int, default=1, help="people and kill instants")
    parser.add_argument("--per-person", type=int, default=3, help="photos per enrolment")
    parser.add_argument("--models-dir")
    parser.add_argument("--data", default=os.environ.get("FACELIVE_TEST_DATA",
                                                         str(REPO.parent / "shared" / "data")))
    args = parser.parse_args()
    urllib3.disable_warnings()
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"{results['rounds']} kills: {results['kills']}")
        print(f"stored {results['enrolments_stored']} enrolments "
              f"({results['examples_stored']} examples), committed examples lost "
              f"{results['committed_examples_lost']}, integrity_check failures "
              f"{results['integrity_check_failures']}")
        print(f"seconds: {results['seconds']}")
        for problem in results["problems"]:
            print(f"problem: {problem}")
    ok = not results["problems"] and not results["committed_examples_lost"]
    return 0 if ok and not results["integrity_check_failures"] else 1


if __name__ == "__main__":
    sys.exit(main())
