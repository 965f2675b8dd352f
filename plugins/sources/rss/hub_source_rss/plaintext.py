"""Feed HTML as the plain text a bulletin carries: paragraphs kept, markup, scripts and styles
gone, Vietnamese in its composed (NFC) form.

A feed's description is HTML more often than not, and a speaker reads text aloud: "<p>Bão số
3</p><p>…" must become two paragraphs, not "Bão số 3…" run together nor the tags spoken. Text
typed on some keyboards (and some content systems) arrives decomposed (NFD: "ố" as o + two
combining marks); devices and the speech engine get NFC, like everything else in the hub.
"""
from __future__ import annotations

import re

import lxml.etree
import lxml.html

from hub.text import nfc

# Elements after which a reader sees a new paragraph or line.
BLOCKS = frozenset({"p", "div", "section", "article", "header", "footer", "aside", "blockquote", "pre", "ul",
                    "ol", "li", "dl", "dt", "dd", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6",
                    "figure", "figcaption", "hr", "address"})
HIDDEN = ("script", "style", "noscript", "template", "iframe", "object", "embed")
_BLANK_RUN = re.compile(r"\n{3,}")
_SPACE = re.compile(r"\s+")


def _lines(text: str) -> str:
    """Spaces collapsed within each line, at most one blank line between paragraphs."""
    lines = [" ".join(line.split()) for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip()


def plain(text: str) -> str:
    """Text that is already plain: tidied and NFC."""
    return nfc(_lines(text))


def html_to_text(html: str) -> str:
    """Plain NFC text of an HTML fragment, paragraph breaks as blank lines."""
    if not html or not html.strip():
        return ""
    if "<" not in html and "&" not in html:  # already plain text: parsing would only lose line breaks
        return plain(html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return plain(html)
    for node in root.xpath(" | ".join(f".//{tag}" for tag in HIDDEN) + " | .//comment()"):
        node.drop_tree()  # keeps the text that follows the element
    # In HTML a line break in the source is only a space (a <p> wrapped at 80 columns is one
    # paragraph); only <br> and block elements break lines. <pre> keeps its lines.
    for el in root.iter():
        if isinstance(el.tag, str) and el.tag != "pre" and not any(a.tag == "pre" for a in el.iterancestors()):
            el.text = _SPACE.sub(" ", el.text) if el.text else el.text
        if el.tail and not any(a.tag == "pre" for a in el.iterancestors()):
            el.tail = _SPACE.sub(" ", el.tail)
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        if el.tag == "br":
            el.tail = "\n" + (el.tail or "")
        elif el.tag in BLOCKS:
            el.text = "\n\n" + (el.text or "")
            el.tail = "\n\n" + (el.tail or "")
    return nfc(_lines(root.text_content()))


def one_line(text: str) -> str:
    """A title: plain, NFC, on one line."""
    return " ".join(html_to_text(text).split())


def language_tag(value: object) -> str | None:
    """'vi', 'vi-VN' from what feeds write ('vi', 'vi-vn', 'VI_vn', 'vi-VN '); None if it is no tag."""
    if not isinstance(value, str):
        return None
    parts = [p for p in value.strip().replace("_", "-").split("-") if p]
    if not parts or not re.fullmatch(r"[A-Za-z]{2,3}", parts[0]):
        return None
    tag = [parts[0].lower()] + [p.upper() if len(p) == 2 and p.isalpha() else p for p in parts[1:]]
    return "-".join(tag) if all(re.fullmatch(r"[A-Za-z0-9]{2,8}", p) for p in tag[1:]) else None
