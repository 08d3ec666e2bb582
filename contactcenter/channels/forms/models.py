"""Web form definitions (from configuration or the admin page).

A form's fields are a small declarative schema kept as JSON: it is
configuration, read whole and never filtered on (see ``forms.schema``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from contactcenter.db import Base, TimestampMixin


class WebForm(TimestampMixin, Base):
    """A public form: its fields, the queue and language its tickets get."""

    __tablename__ = "web_forms"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str | None] = mapped_column(String(8))
    queue_id: Mapped[int | None] = mapped_column(ForeignKey("queues.id", ondelete="SET NULL"))
    fields: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    enabled: Mapped[bool] = mapped_column(default=True)
    acknowledge: Mapped[bool] = mapped_column(default=True)
    success_message: Mapped[str] = mapped_column(Text, default="")
