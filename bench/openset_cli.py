"""Open set on LFW through the real CLI, as a user would run it (issues 11 and 12).

    python bench/openset_cli.py LFW_DIR WORK_DIR [--examples 5] [--people 100]
        [--strangers 1000] [--seed 0] [--json]

The split of `facelive evaluate-openset --seed S` (people with more than E photos, E of them
enrolled, their other photos as probes, one photo each of other people as strangers). WORK_DIR
gets one folder per person (links to the enrolment photos), a fresh data dir, and the CLI's
answers; then `facelive enroll --from-dir` and one `facelive identify --json` over probes and
strangers, at the defaults of the environment (FACELIVE_EMBEDDER, FACELIVE_MODELS...; no
threshold is passed). A photo's answer is its main face (pick_primary's rule: largest, minus
twice the squared offset from the centre). Counts, not timings: the machine's load does not
move them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from facelive.tools.evaluate_openset import people_photos, split_openset


def _cli(*args: str, env: dict[str, str], out: Path) -> int:
    command = [sys.executable, "-c", "import sys; from facelive.cli import main; "
               "sys.exit(main(sys.argv[1:]))", *args]
    with open(out, "w") as stdout, open(out.with_suffix(".err"), "w") as stderr:
        return subprocess.call(command, stdout=stdout, stderr=stderr, env=env)


def _main_face(faces: list[dict], shape: tuple[int, int]) -> dict | None:
    best, best_value = None, -float("inf")
    for face in faces:
        x, y, w, h = face["box"]
        dx, dy = x + w / 2 - shape[1] / 2, y + h / 2 - shape[0] / 2
        value = w * h - 2 * (dx * dx + dy * dy)
        if value > best_value:
            best, best_value = face, value
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lfw", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--examples", type=int, default=5)
    parser.add_argument("--strangers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    split = split_openset(people_photos(args.lfw), args.people, args.examples, args.strangers,
                          args.seed)
    shutil.rmtree(args.work, ignore_errors=True)
    enrol = args.work / "enrol"
    for path, label in split.gallery:
        folder = enrol / split.people[label]
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(path.resolve(), folder / path.name)
    env = {**os.environ, "FACELIVE_DATA": str(args.work / "data")}
    env.pop("FACELIVE_THRESHOLD", None)
    _cli("enroll", "--from-dir", str(enrol), "--json", env=env, out=args.work / "enroll.json")
    _cli("people", "list", env=env, out=args.work / "people.txt")
    asked = [(p, split.people[label]) for p, label in split.probes] + [
        (p, None) for p in split.strangers]
    _cli("identify", "--json", *(str(p) for p, _ in asked), env=env,
         out=args.work / "identify.json")

    enrolled = json.loads((args.work / "enroll.json").read_text())
    answers = json.loads((args.work / "identify.json").read_text())
    by_image = {entry["image"]: entry for entry in answers["images"]}
    right = misnamed = named = 0
    for path, person in asked:
        entry = by_image[str(path)]
        face = _main_face(entry["faces"], (250, 250))
        name = face["name"] if face else "unknown"
        if person is None:
            named += name != "unknown"
        elif name == person.replace("_", " "):
            right += 1
        elif name != "unknown":
            misnamed += 1
    probes = len(split.probes)
    result = {
        "embedder": answers.get("embedder"),
        "people": args.people, "examples": args.examples, "seed": args.seed,
        "photos_enrolled": sum(p["added"] for p in enrolled["people"]),
        "photos_refused": sum(len(p["skipped"]) for p in enrolled["people"]),
        "people_left_out": sum(p["added"] == 0 for p in enrolled["people"]),
        "rule": (args.work / "people.txt").read_text().strip().splitlines()[-1],
        "probes": probes, "top1": round(right / probes, 4), "misnamed": misnamed,
        "strangers": len(split.strangers), "strangers_named": named,
        "stranger_rate": round(named / len(split.strangers), 4),
    }
    print(json.dumps(result, indent=2) if args.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
