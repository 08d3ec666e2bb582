"""Users, their roles and skills, API tokens and the audit log."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from contactcenter.db import Base, TimestampMixin, utcnow


class Role(StrEnum):
    """What a user may do; a user may hold several."""

    AGENT = "agent"
    SUPERVISOR = "supervisor"
    KNOWLEDGE_EDITOR = "knowledge_editor"
    TECHNICIAN = "technician"
    ADMIN = "admin"


class User(TimestampMixin, Base):
    """A person who signs in: agent, supervisor, knowledge editor or admin."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    financial_access: Mapped[bool] = mapped_column(default=False)
    languages: Mapped[str] = mapped_column(String(100), default="en")
    locale: Mapped[str] = mapped_column(String(8), default="en")
    last_login_at: Mapped[dt.datetime | None]

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    skills: Mapped[list[AgentSkill]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def role_names(self) -> frozenset[Role]:
        """Return the roles this user holds."""
        return frozenset(Role(r.role) for r in self.roles)

    @property
    def language_list(self) -> list[str]:
        """Return the languages the user speaks, as ISO codes."""
        return [code for code in self.languages.split(",") if code]


class UserRole(Base):
    """One role held by one user."""

    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))

    user: Mapped[User] = relationship(back_populates="roles")


class AgentSkill(Base):
    """A skill an agent has, with a level from 1 (basic) to 5 (expert)."""

    __tablename__ = "agent_skills"
    __table_args__ = (UniqueConstraint("user_id", "skill"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    skill: Mapped[str] = mapped_column(String(64), index=True)
    level: Mapped[int] = mapped_column(default=3)

    user: Mapped[User] = relationship(back_populates="skills")


class ApiToken(TimestampMixin, Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class AuditLog(Base):
    """Who did or saw what, when: merges, unmasked financial data, role changes."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(64))
    object_id: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(32), default="")
