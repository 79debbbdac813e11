"""The active audit: does the application under test fail open? (cases, HTTP driver, reports)."""

from .cases import CASE_IDS
from .model import USER_IP, AuditOptions, Submit
from .runner import run_audit

__all__ = ["CASE_IDS", "USER_IP", "AuditOptions", "Submit", "run_audit"]
