"""Checks agora's shipped zone B school holidays against an independent source: the
`vacances-scolaires-france` package (PyPI), which carries the ministry's calendar day by day.

Every day from the first holiday agora lists to the last must agree: on holiday in both, under the
same name, or in neither. Run by scripts/test.sh in a virtual environment holding the package.
"""

import csv
import datetime
import pathlib
import sys

import vacances_scolaires_france

ours_path = pathlib.Path(__file__).parent.parent / "crates/agora-indicators/data/school-holidays-zone-b.csv"
ours = {}
lines = [l for l in ours_path.read_text(encoding="utf-8").splitlines() if l and not l.startswith("#")]
for row in csv.DictReader(lines):
    day = datetime.date.fromisoformat(row["first_day"])
    last = datetime.date.fromisoformat(row["last_day"])
    while day <= last:
        ours[day] = row["name"]
        day += datetime.timedelta(days=1)

reference_csv = pathlib.Path(vacances_scolaires_france.__file__).parent / "data" / "data.csv"
theirs = {}
with reference_csv.open(encoding="utf-8") as f:
    for row in csv.DictReader(f):
        if row["vacances_zone_b"] == "True":
            theirs[datetime.date.fromisoformat(row["date"])] = row["nom_vacances"]

first, last = min(ours), max(ours)
problems = []
day = first
while day <= last:
    if ours.get(day) != theirs.get(day):
        problems.append(f"{day}: agora says {ours.get(day)!r}, the reference {theirs.get(day)!r}")
    day += datetime.timedelta(days=1)
if problems:
    print("zone B school holidays differ from the reference:", *problems[:20], sep="\n  ")
    sys.exit(1)
print(f"zone B school holidays agree with the reference, {first} to {last} ({len(ours)} days off)")
