"""The twelve harassment types of the contact-center guideline, with stable codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    ja: str
    en: str


CATEGORIES: tuple[Category, ...] = (
    Category("time-restraint", "時間拘束型", "Time restraint"),
    Category("repeated-calls", "リピート型", "Repeated calls"),
    Category("abusive-language", "暴言型(大声・罵声)", "Abusive language or shouting"),
    Category("threats", "威嚇・脅迫型", "Threats"),
    Category("relentless-blame", "揚げ足取り・執拗な責め立て", "Nitpicking and relentless blame"),
    Category("lecturing", "権威型(説教)", "Authoritarian lecturing"),
    Category(
        "exposure-threats", "SNS・マスコミへの暴露型", "Threats to post on the internet or media"
    ),
    Category("sexual-harassment", "セクハラ型", "Sexual harassment"),
    Category("apology-demands", "過度な謝罪要求(土下座等)", "Excessive apology demands"),
    Category("personal-info", "従業員の個人情報の要求", "Demands for staff's personal information"),
    Category("punish-staff", "従業員の解雇・処罰の要求", "Demands to fire or punish staff"),
    Category("excessive-demands", "不当・過剰な要求", "Unjustified excessive demands"),
)
BY_CODE = {c.code: c for c in CATEGORIES}


def category(code: str) -> Category:
    """The category for `code`; ValueError naming the valid codes otherwise."""
    try:
        return BY_CODE[code.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown category {code!r}; one of: {', '.join(BY_CODE)}") from None
