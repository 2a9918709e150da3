"""Crash benchmark: kill -9 of a real server during REST enrolments, then check nothing was lost.

    python bench/crash.py [--json] [--rounds 50] [--seed 1] [--per-person 3] [--models-dir D]
                          [--data DIR]

Each round streams enrolments, one request after another (a different LFW person's
`--per-person` photos each), through POST /api/people/{name}/examples of a real `facelive serve`
subprocess, and kills the server with SIGKILL at a random instant (seeded) of the stream. Then
it checks the gallery file (SQLite `PRAGMA integrity_check`, people and examples), restarts the
server and checks again through the API: every enrolment answered 2xx before a kill, in any
round, must be there with all its examples (and a vector each); the one cut off is absent or
whole, never partial; nobody else appears. Needs FACELIVE_TEST_DATA (../shared/data) and
fetched models. Exit status 1 when anything was lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import urllib3

from benchutil import Server, machine, start_server
from benchutil import stop_server as stop

REPO = Path(__file__).resolve().parents[1]
GALLERY = "gallery.sqlite3"
# Kills fall uniformly in the first STREAM_S seconds of a round's stream of enrolments: a
# dozen or so are answered before it (their data must survive), one is cut off.
STREAM_S = 2.5
# LFW people the enrolments cycle through (their photos are read once).
POOL = 200


def lfw_people(lfw: Path, count: int, per_person: int, seed: int) -> list[tuple[str, list[bytes]]]:
    """`count` different LFW people with at least `per_person` photos each (seeded choice):
    (name, photo bytes)."""
    people = [sorted(d.glob("*.jpg")) for d in sorted(lfw.iterdir()) if d.is_dir()]
    people = [photos[:per_person] for photos in people if len(photos) >= per_person]
    if len(people) < count:
        raise SystemExit(f"bench: only {len(people)} LFW people have {per_person} photos")
    return [(photos[0].parent.name.replace("_", " "), [p.read_bytes() for p in photos])
            for photos in random.Random(seed).sample(people, count)]


def enrol(http: requests.Session, server: Server, name: str,
          photos: list[bytes]) -> requests.Response:
    files = [("images", (f"{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    # add=true: rounds add to people earlier rounds made (issue 16's 409 otherwise).
    return http.post(f"{server.url}/api/people/{quote(name, safe='')}/examples?add=true",
                     files=files,
                     headers={"Authorization": f"Bearer {server.token}"}, verify=False,
                     timeout=120)


def enrol_stream(
    http: requests.Session, server: Server, people: list[list[bytes]], names: list[str],
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """Enrol people[i] as names[i], one request after another, on a thread, until a request
    fails (the kill). Each answer dict gets `name` and `reply` + `seconds`, or `error`."""
    answers: list[dict[str, Any]] = []

    def stream() -> None:
        for name, photos in zip(names, people, strict=True):
            answer: dict[str, Any] = {"name": name}
            answers.append(answer)
            sent = time.perf_counter()
            try:
                answer["reply"] = enrol(http, server, name, photos)
                answer["seconds"] = time.perf_counter() - sent
            except requests.RequestException as exc:  # the kill cut the connection
                answer["error"] = exc
                return

    thread = threading.Thread(target=stream)
    thread.start()
    return thread, answers


def api_people(http: requests.Session, server: Server) -> dict[str, int]:
    reply = http.get(f"{server.url}/api/people", verify=False, timeout=30,
                     headers={"Authorization": f"Bearer {server.token}"})
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


def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    pool = lfw_people(Path(args.data) / "lfw", POOL, args.per_person, args.seed)
    http = requests.Session()
    committed: dict[str, int] = {}  # name -> examples, for every enrolment known stored
    outcomes = {"answered_2xx_before_kill": 0, "cut_off_found_whole": 0,
                "cut_off_found_absent": 0, "answered_4xx": 0}
    problems: list[str] = []
    integrity_failures = 0
    request_s: list[float] = []
    start_s: list[float] = []
    round_s: list[float] = []
    sent_total = 0

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
            for number in range(1, args.rounds + 1):
                round_began = time.perf_counter()
                # More requests than can run before the kill; each a new name.
                chosen = [pool[(sent_total + i) % len(pool)] for i in range(200)]
                names = [f"{who} {number}-{i}" for i, (who, _) in enumerate(chosen)]
                thread, answers = enrol_stream(http, server, [p for _, p in chosen], names)
                time.sleep(rng.uniform(0, STREAM_S))
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait()
                thread.join(timeout=60)
                sent_total += len(answers)
                cut_name = None
                for answer in answers:
                    reply = answer.get("reply")
                    if reply is None:
                        cut_name = answer["name"]
                        continue
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
                cut_off = cut_name is not None and cut_name in in_file
                if cut_off:
                    # Stored although no reply came: it must be whole. Whole means as many
                    # examples as the same photos give when enrolled again.
                    committed[cut_name] = in_file[cut_name]
                check(f"round {number}, file", in_file)

                started = time.perf_counter()
                server = start_server(data_dir, args.models_dir)
                start_s.append(time.perf_counter() - started)
                check(f"round {number}, API", api_people(http, server))
                if cut_name is not None:
                    outcomes["cut_off_found_whole" if cut_off else "cut_off_found_absent"] += 1
                if cut_off:
                    photos = chosen[names.index(cut_name)][1]
                    control = enrol(http, server, f"Control {number}", photos)
                    whole = control.json().get("examples_added") if control.ok else None
                    if whole != in_file[cut_name]:
                        problems.append(f"round {number}: {cut_name!r} cut off with "
                                        f"{in_file[cut_name]} of {whole} examples")
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
        "enrolments_sent": sent_total,
        "enrolments_stored": len(committed),
        "examples_stored": sum(committed.values()),
        "committed_examples_lost": lost,
        "integrity_check_failures": integrity_failures,
        "problems": problems,
        "seconds": {
            "total": round(time.perf_counter() - began, 1),
            "per_round_median": round(statistics.median(round_s), 2) if round_s else None,
            "server_start_median": round(statistics.median(start_s), 2),
            "enrol_request_median": round(statistics.median(request_s), 3)
            if request_s else None,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--rounds", type=int, default=50, help="kills (one per round)")
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
