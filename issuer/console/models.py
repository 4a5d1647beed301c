"""Staff accounts of the console.  Only a scrypt hash of the password is kept."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import UTCDateTime
from ..models import Base, Municipality

ROLES = ("clerk", "supervisor")


class StaffUser(Base):
    __tablename__ = "staff_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)  # unique per deployment
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    # Sign-in rate limit (kept in the database so that it holds across workers).
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    failed_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    municipality: Mapped[Municipality] = relationship()
