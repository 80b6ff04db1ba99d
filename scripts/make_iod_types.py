"""Write app/data/iod-types.json.gz: the Types (1, 1C, 2, 2C) of every attribute path per IOD.

The de-identifier needs to know, for an attribute it is about to remove, whether the
object's IOD requires it (Type 1/1C: a dummy value, Type 2/2C: present and empty),
at its path inside sequences (PS3.3 7.4, PS3.15 E.1.1 "... or emptied where the IOD
needs it"). The source is the set of tables highdicom bundles
(``highdicom/_standard/{sop_class_iod_map,iod_module_map,module_attribute_map}.json``),
generated from innolitics/dicom-standard (MIT) from the DICOM standard's XML.
highdicom is only needed to run this script, not at run time:

    /work/main/.venv/bin/python scripts/make_iod_types.py [--source DIR]

Type 3 attributes are left out (absent means "optional"), except as the path to a
required attribute nested below them. Paths are tags in hex joined by "/".
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "app" / "data" / "iod-types.json.gz"
REQUIRED = ("1", "1C", "2", "2C")


def _default_source() -> Path:
    import highdicom  # only where the script runs; not a runtime dependency

    return Path(highdicom.__file__).parent / "_standard"


def build(source: Path) -> dict[str, object]:
    from pydicom.datadict import tag_for_keyword

    sop_iod = json.loads((source / "sop_class_iod_map.json").read_text("utf-8"))
    iod_modules = json.loads((source / "iod_module_map.json").read_text("utf-8"))
    module_attrs = json.loads((source / "module_attribute_map.json").read_text("utf-8"))

    skipped: set[str] = set()

    def tag_of(keyword: str) -> str | None:
        tag = tag_for_keyword(keyword)
        if tag is None:
            skipped.add(keyword)
            return None
        return f"{tag:08X}"

    modules: dict[str, dict[str, str]] = {}
    used = {entry["key"] for entries in iod_modules.values() for entry in entries}
    for name in sorted(used):
        types: dict[str, str] = {}
        for attr in module_attrs.get(name, []):
            kind = attr["type"]
            if kind not in REQUIRED:
                continue
            parts = [tag_of(k) for k in [*attr["path"], attr["keyword"]]]
            if any(p is None for p in parts):
                continue
            path = "/".join(p for p in parts if p)
            # the same path can appear twice (two macros); the more demanding Type wins
            old = types.get(path)
            if old is None or REQUIRED.index(kind) < REQUIRED.index(old):
                types[path] = kind
        if types:
            modules[name] = types
    iods = {
        iod: sorted({e["key"] for e in entries if e["key"] in modules})
        for iod, entries in sorted(iod_modules.items())
    }
    return {
        "source": "highdicom _standard tables (innolitics/dicom-standard, MIT)",
        "highdicom": _highdicom_version(),
        "sop_classes": dict(sorted(sop_iod.items())),
        "iods": iods,
        "modules": modules,
        "skipped_keywords": sorted(skipped),
    }


def _highdicom_version() -> str:
    try:
        import highdicom

        return str(highdicom.__version__)
    except ImportError:
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--source", type=Path, default=None)
    args = parser.parse_args()
    data = build(args.source or _default_source())
    text = json.dumps(data, separators=(",", ":"), sort_keys=False).encode("utf-8")
    # mtime=0: the same tables give the same bytes, so git sees no spurious change
    OUT.write_bytes(gzip.compress(text, compresslevel=9, mtime=0))
    iods, modules = data["iods"], data["modules"]
    assert isinstance(iods, dict) and isinstance(modules, dict)
    print(f"{OUT.relative_to(ROOT)}: {len(iods)} IODs, {len(modules)} modules, "
          f"{OUT.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
