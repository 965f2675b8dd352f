"""The requirement catalogue (requirements.yaml): loading and its schema check.

The schema check is what keeps the catalogue honest: every entry names a source document and an
evidence level, `verified` is only allowed for Ministry texts that were actually read, and every
threshold an entry uses is a suite parameter (chosen by the hub), never a number in the entry.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from hub.capabilities import CAPABILITIES

EVIDENCE_LEVELS = ("verified", "inferred")
TIERS = ("required", "recommended")
ID_PATTERN = re.compile(r"^[A-Z]+(-[A-Z]+)?-\d{2}$")
_FIELDS = {"id", "title_en", "title_vi", "source", "evidence", "tier", "capability", "rationale", "parameters"}
_REQUIRED_FIELDS = _FIELDS - {"parameters"}
_SOURCE_FIELDS = {"document", "section", "research"}
# Vietnamese titles must really be Vietnamese: at least one letter outside ASCII.
_NON_ASCII = re.compile(r"[^\x00-\x7f]")


class CatalogueError(ValueError):
    """The catalogue breaks its own schema; the message lists every problem."""


@dataclass(frozen=True)
class Document:
    key: str
    title: str
    ministry: bool
    read: str

    @property
    def was_read(self) -> bool:
        return not self.read.lower().startswith("not found")


@dataclass(frozen=True)
class Requirement:
    id: str
    title_en: str
    title_vi: str
    document: str
    section: str
    research: str | None
    evidence: str
    tier: str
    capability: str | None
    rationale: str
    parameters: tuple[str, ...] = ()

    def source_text(self, catalogue: Catalogue) -> str:
        doc = catalogue.documents[self.document]
        where = f" — {self.section}" if self.section else ""
        note = f" (research note {self.research})" if self.research else ""
        return f"{doc.title}{where}{note}"

    def to_dict(self, catalogue: Catalogue) -> dict[str, Any]:
        return {"id": self.id, "title_en": self.title_en, "title_vi": self.title_vi,
                "source": {"document": self.document, "title": catalogue.documents[self.document].title,
                           "section": self.section, "research": self.research},
                "evidence": self.evidence, "tier": self.tier, "capability": self.capability,
                "rationale": self.rationale, "parameters": list(self.parameters)}


@dataclass(frozen=True)
class Catalogue:
    version: str
    documents: dict[str, Document]
    requirements: dict[str, Requirement] = field(default_factory=dict)

    def __getitem__(self, rid: str) -> Requirement:
        return self.requirements[rid]

    def __iter__(self):  # noqa: ANN204 - an iterator of Requirement
        return iter(self.requirements.values())

    def __len__(self) -> int:
        return len(self.requirements)

    def counts(self) -> dict[str, int]:
        out = {level: 0 for level in EVIDENCE_LEVELS}
        for r in self:
            out[r.evidence] += 1
        return out


def validate(data: Any, known_parameters: set[str] | None = None) -> list[str]:
    """Every problem with raw catalogue data, as readable lines (empty when it is sound)."""
    problems: list[str] = []
    if not isinstance(data, dict):
        return ["the catalogue must be a mapping"]
    if not isinstance(data.get("catalogue_version"), str):
        problems.append("catalogue_version must be a string")
    docs = data.get("documents")
    if not isinstance(docs, dict) or not docs:
        return problems + ["documents must be a non-empty mapping"]
    for key, doc in docs.items():
        if not isinstance(doc, dict) or not {"title", "ministry", "read"} <= set(doc):
            problems.append(f"document {key}: needs title, ministry and read")
    reqs = data.get("requirements")
    if not isinstance(reqs, list) or not reqs:
        return problems + ["requirements must be a non-empty list"]
    seen: set[str] = set()
    for i, entry in enumerate(reqs):
        where = f"requirements[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: must be a mapping")
            continue
        rid = entry.get("id")
        where = f"{rid or where}"
        missing = sorted(_REQUIRED_FIELDS - set(entry))
        if missing:
            problems.append(f"{where}: missing {', '.join(missing)}")
        extra = sorted(set(entry) - _FIELDS)
        if extra:
            problems.append(f"{where}: unknown fields {', '.join(extra)}")
        if not isinstance(rid, str) or not ID_PATTERN.match(rid):
            problems.append(f"{where}: id must look like PRIO-01 or SEC-AUTH-01")
        elif rid in seen:
            problems.append(f"{where}: id appears twice")
        else:
            seen.add(rid)
        for text in ("title_en", "title_vi", "rationale"):
            if text in entry and (not isinstance(entry[text], str) or not entry[text].strip()):
                problems.append(f"{where}: {text} must be non-empty text")
        if isinstance(entry.get("title_vi"), str) and not _NON_ASCII.search(entry["title_vi"]):
            problems.append(f"{where}: title_vi has no Vietnamese letter; is it translated?")
        evidence = entry.get("evidence")
        if evidence not in EVIDENCE_LEVELS:
            problems.append(f"{where}: evidence must be one of {', '.join(EVIDENCE_LEVELS)}")
        if entry.get("tier") not in TIERS:
            problems.append(f"{where}: tier must be one of {', '.join(TIERS)}")
        cap = entry.get("capability")
        if cap is not None and cap not in CAPABILITIES:
            problems.append(f"{where}: capability {cap!r} is not in the hub's vocabulary")
        source = entry.get("source")
        if not isinstance(source, dict) or set(source) != _SOURCE_FIELDS:
            problems.append(f"{where}: source must have exactly document, section, research")
        else:
            doc_key = source.get("document")
            if doc_key not in docs:
                problems.append(f"{where}: source document {doc_key!r} is not in documents")
            elif evidence == "verified":
                doc = docs[doc_key]
                if not doc.get("ministry"):
                    problems.append(f"{where}: verified evidence must come from a Ministry text, not {doc_key}")
                if str(doc.get("read", "")).lower().startswith("not found"):
                    problems.append(f"{where}: cannot be verified from {doc_key}, which was not found")
                if not source.get("research"):
                    problems.append(f"{where}: verified evidence must cite the research note section")
            if not isinstance(source.get("section"), str) or not source["section"].strip():
                problems.append(f"{where}: source.section must say where in the document")
        params = entry.get("parameters", [])
        if not isinstance(params, list):
            problems.append(f"{where}: parameters must be a list")
        elif known_parameters is not None:
            unknown = sorted(set(params) - known_parameters)
            if unknown:
                problems.append(f"{where}: unknown parameters {', '.join(unknown)}")
        # A Ministry number must never hide in prose: thresholds belong in parameters.
        for text in ("title_en", "title_vi"):
            if isinstance(entry.get(text), str) and re.search(r"\d+\s*(s|ms|sec|seconds|giây|phút)\b", entry[text]):
                problems.append(f"{where}: {text} states a time limit; make it a suite parameter")
    return problems


def parse(data: dict[str, Any]) -> Catalogue:
    from hub_conformance.params import PARAMETERS

    problems = validate(data, set(PARAMETERS))
    if problems:
        raise CatalogueError("requirement catalogue is invalid:\n  " + "\n  ".join(problems))
    documents = {k: Document(k, v["title"], bool(v["ministry"]), str(v["read"])) for k, v in data["documents"].items()}
    reqs = {}
    for e in data["requirements"]:
        s = e["source"]
        reqs[e["id"]] = Requirement(e["id"], e["title_en"].strip(), e["title_vi"].strip(), s["document"],
                                    s["section"], s.get("research"), e["evidence"], e["tier"], e.get("capability"),
                                    " ".join(e["rationale"].split()), tuple(e.get("parameters") or ()))
    return Catalogue(str(data["catalogue_version"]), documents, reqs)


def raw() -> dict[str, Any]:
    text = resources.files("hub_conformance").joinpath("requirements.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


@lru_cache(maxsize=1)
def load() -> Catalogue:
    """The packaged catalogue, checked against its schema."""
    return parse(raw())
