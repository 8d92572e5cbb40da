"""What a reviewer answers about the images a run left waiting, from the Prefect UI or the terminal.

``ReviewInput`` is the form: Prefect builds the pause form from its JSON schema (a checkbox, two
lists of SKUs, a list of {SKU, note} to make again, a name), so every field is simple and has a
title; a SKU the run did not leave waiting is reported by the flow, not by a validator (an
invalid input would fail the run, prefect issue 12279). ``ReviewCommand`` is the same answer as
``bananaflow review`` flags (generated from its fields like every other command's).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from bananaflow.errors import ConfigurationError
from bananaflow.options import Flag, NoFlag

__all__ = ["Regeneration", "ReviewCommand", "ReviewInput"]


class Regeneration(BaseModel):
    """One product to make again, with what to fix."""

    sku: str = Field(title="SKU", description="A product waiting above.")
    note: str = Field("", title="Note", description="What to fix; sent with the request as a correction.")


class ReviewInput(BaseModel):
    """A reviewer's answer: every waiting image of a SKU named here gets that decision; with
    ``approve_all`` the images of the SKUs not named are approved, else they keep waiting."""

    approve_all: bool = Field(
        False, title="Approve all others",
        description="Approve every waiting image whose SKU is not rejected or sent back below.",
    )
    approve: list[str] = Field(default_factory=list, title="Approve (SKUs)", description="Publish these products' images.")
    reject: list[str] = Field(default_factory=list, title="Reject (SKUs)",
                              description="Never publish these images; the next run does not make them again.")
    regenerate: list[Regeneration] = Field(default_factory=list, title="Make again (SKU and note)",
                                           description="Make these again now, with the note as a correction.")
    reviewer: str = Field("", title="Your name", description="Recorded with the decisions.")

    def named(self) -> set[str]:
        """Every SKU the answer names."""
        return {*self.approve, *self.reject, *(r.sku for r in self.regenerate)}


class ReviewCommand(BaseModel):
    """What to decide (none: list what waits). Name the run first: bananaflow review RUN --approve A B.
    Each --regenerate SKU takes the --note that follows it."""

    model_config = ConfigDict(extra="forbid")

    approve_all: bool = Field(False, description="Approve every waiting image not rejected or sent back.")
    approve: Annotated[list[str], Flag(metavar="SKU", many=True)] = Field(
        default_factory=list, description="Approve these SKUs' waiting images."
    )
    reject: Annotated[list[str], Flag(metavar="SKU", many=True)] = Field(
        default_factory=list, description="Reject these SKUs' images: never published, not made again."
    )
    regenerate: Annotated[list[str], Flag(metavar="SKU")] = Field(
        default_factory=list, description="Make this SKU again (a paused run does it now; a finished run's next run does)."
    )
    note: Annotated[list[str], Flag(metavar="TEXT")] = Field(
        default_factory=list, description="What to fix, for the --regenerate before it."
    )
    reviewer: Annotated[str, NoFlag("who decided is what the shell knows (user@host)")] = ""

    @property
    def decides(self) -> bool:
        return bool(self.approve_all or self.approve or self.reject or self.regenerate)

    def to_input(self) -> ReviewInput:
        if len(self.note) > len(self.regenerate):
            raise ConfigurationError("bananaflow review: each --note follows the --regenerate SKU it is for")
        notes = [*self.note, *[""] * (len(self.regenerate) - len(self.note))]
        return ReviewInput(
            approve_all=self.approve_all, approve=list(self.approve), reject=list(self.reject),
            regenerate=[Regeneration(sku=sku, note=note) for sku, note in zip(self.regenerate, notes)],
            reviewer=self.reviewer,
        )
