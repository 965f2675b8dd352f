"""Feed HTML as a speaker reads it: a paragraph wrapped in the feed's source is one line of text,
while paragraphs, <br> and <pre> keep their breaks."""
from __future__ import annotations

from hub_source_rss.plaintext import html_to_text


def test_a_wrapped_paragraph_is_one_line_and_paragraphs_stay_apart() -> None:
    html = "<p>Điện lực <b>Tân An</b> cắt điện\n   ngày 12/10.</p>\n<p>Bà con\nchú ý.<br>Xin cảm ơn.</p>"
    assert html_to_text(html) == "Điện lực Tân An cắt điện ngày 12/10.\n\nBà con chú ý.\nXin cảm ơn."


def test_preformatted_text_keeps_its_lines() -> None:
    assert html_to_text("<pre>07:00  Tin sáng\n11:00  Tin trưa</pre>") == "07:00 Tin sáng\n11:00 Tin trưa"
