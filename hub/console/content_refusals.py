"""A refused step of the editorial workflow told as the workflow's rule, in a sentence of the reader's
language. hub.content.workflow and hub.content.editing name the rule they applied (WorkflowError.rule);
the sentence is chosen by that name, the hub's own words kept as the technical detail."""
from __future__ import annotations

from flask_babel import gettext as _

from hub.content.workflow import WorkflowError
from hub.console.refusals import Refusal


def sentence_for(rule: str) -> str:
    sentences = {
        "four_eyes": _("Four eyes: the person who wrote a bulletin may not approve it; another approver of the "
                       "area must do it."),
        "role": _("Your account may not take this step: editors write and submit, approvers approve, reject "
                  "and publish."),
        "area": _("This bulletin belongs to an area outside your own areas."),
        "area_required": _("Choose the area the bulletin is for."),
        "unknown_area": _("The area chosen does not exist."),
        "order": _("This step does not fit where the bulletin stands: a draft is submitted, a submitted "
                   "bulletin approved or rejected, an approved one published."),
        "reason": _("Give a reason when rejecting, so that the author knows what to change."),
        "stale": _("Someone changed this bulletin since you opened it; reload the page and try again."),
        "invalid": _("The bulletin is not complete: it needs a title and a text to speak."),
        "unpublished": _("Only a published bulletin may be sent to devices."),
    }
    return sentences.get(rule, _("The editorial workflow does not allow this step."))


def from_workflow(exc: WorkflowError) -> Refusal:
    return Refusal(sentence_for(exc.rule), str(exc))


__all__ = ["from_workflow", "sentence_for"]
