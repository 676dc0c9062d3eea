#!/usr/bin/env python3
"""Validate DCAT-AP catalogues against the DCAT-AP 3.0.1 SHACL shapes with pySHACL.

Usage: check-dcat.py FILE_OR_URL... Each argument is read in the format its name or media type
says (.ttl Turtle, .jsonld JSON-LD, .rdf RDF/XML). The three shape files of
tests/fixtures/dcat-ap-3.0.1 are merged into one shapes graph. Prints every result; exits 1 when
any catalogue has a Violation (Warnings are listed, not fatal), or when a catalogue is empty.
First, the check is shown able to fail: the first catalogue without its catalogue's publisher
and with a literal as a dataset's theme must give violations.
"""
import sys
import urllib.request
from pathlib import Path

from pyshacl import validate
from rdflib import Graph, Namespace
from rdflib.namespace import RDF

SH = Namespace("http://www.w3.org/ns/shacl#")
SHAPES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "dcat-ap-3.0.1"
FORMATS = {".ttl": "turtle", ".jsonld": "json-ld", ".rdf": "xml"}


def load(arg: str) -> Graph:
    g = Graph()
    if arg.startswith("http"):
        fmt = next((f for ext, f in FORMATS.items() if arg.endswith(ext)), None)
        with urllib.request.urlopen(arg) as r:
            body = r.read()
            if fmt is None:
                ctype = r.headers.get("Content-Type", "")
                fmt = {"text/turtle": "turtle", "application/ld+json": "json-ld",
                       "application/rdf+xml": "xml"}[ctype.split(";")[0].strip()]
        g.parse(data=body, format=fmt)
    else:
        g.parse(arg, format=FORMATS[Path(arg).suffix])
    return g


def main() -> int:
    shapes = Graph()
    for name in ("shapes.ttl", "range.ttl", "shapes_recommended.ttl"):
        shapes.parse(SHAPES / name, format="turtle")
    failed = False
    broken = load(sys.argv[1])
    DCAT = Namespace("http://www.w3.org/ns/dcat#")
    DCT = Namespace("http://purl.org/dc/terms/")
    from rdflib import Literal
    for cat in broken.subjects(RDF.type, DCAT.Catalog):
        broken.remove((cat, DCT.publisher, None))
    for ds in broken.subjects(RDF.type, DCAT.Dataset):
        broken.add((ds, DCAT.theme, Literal("not an IRI")))
    conforms, _, _ = validate(broken, shacl_graph=shapes, allow_warnings=True)
    if conforms:
        print("a catalogue without publisher and with a literal theme passed: the check cannot fail")
        return 1
    for arg in sys.argv[1:]:
        data = load(arg)
        datasets = len(set(data.subjects(RDF.type, Namespace("http://www.w3.org/ns/dcat#").Dataset)))
        _, report, _ = validate(data, shacl_graph=shapes, allow_warnings=True)
        counts = {"Violation": 0, "Warning": 0, "Info": 0}
        for result in report.subjects(RDF.type, SH.ValidationResult):
            severity = str(report.value(result, SH.resultSeverity)).rsplit("#", 1)[-1]
            counts[severity] = counts.get(severity, 0) + 1
            focus = report.value(result, SH.focusNode)
            path = report.value(result, SH.resultPath)
            message = report.value(result, SH.resultMessage)
            print(f"  {severity}: {focus} {path}: {message}")
        print(f"{arg}: {len(data)} triples, {datasets} datasets, "
              f"{counts['Violation']} violations, {counts['Warning']} warnings")
        if counts["Violation"] or datasets == 0:
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
