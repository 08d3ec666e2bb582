"""The email benchmark's peer: django-helpdesk importing the same corpus from a local folder.

Two halves in one file, both standard library only on the benchmark's side:

- ``ensure_peer_venv()`` (imported by ``email_ingest.py``) makes or reuses a throwaway
  virtualenv with django-helpdesk from PyPI, cached under the temp folder and keyed by
  the version, so only the first run pays for the install.
- ``main()`` runs *inside* that virtualenv (``<venv>/bin/python _email_peer.py ...``):
  it writes a minimal Django project, migrates a fresh SQLite database, creates one
  queue reading a local mail folder (``email_box_type="local"``) and times
  ``helpdesk.email.process_queue`` over a copy of the corpus, then prints one JSON
  object on stdout.

django-helpdesk's local importer reads each file with ``open(path, "r")`` (text mode,
UTF-8 here), so the first raw 8-bit non-UTF-8 message raises ``UnicodeDecodeError``
out of ``process_queue`` and the rest of the folder is not imported in that pass.
Files it imported are deleted by the importer itself. To measure a rate over what
it can import, the runner records which file the importer opened last, moves that
file aside when a pass aborts, and starts the importer again on what is left; the
rate is the messages it imported divided by the time spent inside all passes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PACKAGE = "django-helpdesk"
CACHE_ROOT = Path(tempfile.gettempdir()) / "contactcenter-bench-peer"
# Attachments of the corpus that django-helpdesk's default allow-list rejects; added so
# that the peer stores every attachment, as our pipeline does.
EXTRA_EXTENSIONS = [".csv", ".log"]
DEFAULT_EXTENSIONS = [".txt", ".asc", ".pdf", ".doc", ".docx", ".odt", ".jpg", ".png", ".eml"]


# --- the benchmark's side: the throwaway virtualenv -------------------------------------

class PeerUnavailable(Exception):
    """django-helpdesk cannot be installed or run here (the reason is the message)."""


def _quiet_run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def latest_version(python: str = sys.executable) -> str | None:
    """Ask the package index for the newest release of django-helpdesk (None if offline)."""
    try:
        done = _quiet_run([python, "-m", "pip", "index", "versions", PACKAGE,
                           "--disable-pip-version-check"], timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        if line.startswith(PACKAGE) and "(" in line:
            return line.split("(", 1)[1].split(")", 1)[0].strip()
    return None


def _cached_versions() -> list[Path]:
    if not CACHE_ROOT.is_dir():
        return []
    return sorted((p for p in CACHE_ROOT.iterdir() if (p / "ready.json").is_file()),
                  key=lambda p: p.stat().st_mtime, reverse=True)


def ensure_peer_venv(version: str | None = None, log: Any = None) -> tuple[Path, dict[str, Any]]:
    """Return (python of the peer's venv, what is installed), creating the venv if needed.

    ``version`` None means the newest on the index; if the index cannot be reached the
    newest cached environment is used. Raises ``PeerUnavailable`` with the reason.
    """
    say = log or (lambda _msg: None)
    wanted = version or latest_version()
    if wanted is None:
        cached = _cached_versions()
        if not cached:
            raise PeerUnavailable("the package index cannot be reached to find "
                                  f"{PACKAGE} and no environment is cached")
        home = cached[0]
    else:
        home = CACHE_ROOT / f"{PACKAGE}-{wanted}"
    python = home / "venv" / "bin" / "python"
    ready = home / "ready.json"
    if ready.is_file() and python.exists():
        return python, json.loads(ready.read_text())
    assert wanted is not None
    say(f"installing {PACKAGE}=={wanted} into a throwaway virtualenv at {home}")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    started = time.perf_counter()
    done = _quiet_run([sys.executable, "-m", "venv", str(home / "venv")], timeout=300)
    if done.returncode != 0:
        raise PeerUnavailable(f"python -m venv failed: {done.stderr.strip()[-500:]}")
    done = _quiet_run([str(python), "-m", "pip", "install", "--quiet",
                       "--disable-pip-version-check", f"{PACKAGE}=={wanted}"], timeout=900)
    if done.returncode != 0:
        shutil.rmtree(home, ignore_errors=True)
        raise PeerUnavailable(f"pip install {PACKAGE}=={wanted} failed: "
                              f"{done.stderr.strip()[-800:]}")
    freeze = _quiet_run([str(python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                        timeout=120).stdout.split()
    info = {"version": wanted, "install_s": round(time.perf_counter() - started, 1),
            "packages": freeze, "venv": str(home / "venv")}
    ready.write_text(json.dumps(info, indent=1))
    return python, info


# --- the peer's side: runs inside the throwaway virtualenv ------------------------------

SETTINGS_TEMPLATE = '''\
SECRET_KEY = "email-ingest-benchmark-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
SITE_ID = 1
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
ROOT_URLCONF = "bench_urls"
INSTALLED_APPS = [
    "django.contrib.auth", "django.contrib.contenttypes", "django.contrib.sessions",
    "django.contrib.sites", "django.contrib.admin", "django.contrib.humanize",
    "django.contrib.messages", "rest_framework", "helpdesk",
]
MIDDLEWARE = []
TEMPLATES = [{{
    "BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True,
    "OPTIONS": {{"context_processors": ["django.template.context_processors.request",
                                       "django.contrib.auth.context_processors.auth",
                                       "django.contrib.messages.context_processors.messages"]}},
}}]
DATABASES = {{"default": {{
    "ENGINE": "django.db.backends.sqlite3", "NAME": {db!r},
    "OPTIONS": {options},
}}}}
MEDIA_ROOT = {media!r}
# Acknowledgements to the submitter are rendered and handed to Django's in-memory backend.
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
DEFAULT_FROM_EMAIL = "support@helpdesk.example"
HELPDESK_TEAMS_MODE_ENABLED = False
HELPDESK_VALID_EXTENSIONS = {extensions!r}
LOGGING = {{"version": 1, "disable_existing_loggers": False,
            "root": {{"level": "WARNING", "handlers": []}}}}
'''

# "django": Django's own SQLite defaults (rollback journal, synchronous=FULL), as it ships;
# "product": the journal and sync settings our product's SQLite runs with.
PRAGMAS = {
    "django": {},
    "product": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"},
}

URLS = '''\
from django.urls import include, path
urlpatterns = [path("helpdesk/", include("helpdesk.urls"))]
'''


def _setup_django(work: Path, pragmas: str) -> dict[str, Any]:
    """Write the project, point Django at it and migrate a fresh SQLite database."""
    project = work / "project"
    project.mkdir(parents=True, exist_ok=True)
    (project / "bench_settings.py").write_text(SETTINGS_TEMPLATE.format(
        db=str(work / "helpdesk.sqlite3"), media=str(work / "media"),
        options=PRAGMAS[pragmas],
        extensions=DEFAULT_EXTENSIONS + EXTRA_EXTENSIONS))
    (project / "bench_urls.py").write_text(URLS)
    sys.path.insert(0, str(project))
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench_settings"
    import django

    django.setup()
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    return {"migrate_s": round(time.perf_counter() - started, 2)}


class _OpenRecorder:
    """Stands in for ``open`` in ``helpdesk.email`` to learn which file a pass failed on."""

    def __init__(self) -> None:
        self.last: str | None = None

    def __call__(self, file: Any, *args: Any, **kwargs: Any) -> Any:
        self.last = str(file)
        return open(file, *args, **kwargs)


def run_peer(corpus: Path, work: Path, files: list[str], pragmas: str) -> dict[str, Any]:
    """Import ``files`` of ``corpus`` with django-helpdesk; return its figures."""
    import logging

    setup = _setup_django(work, pragmas)
    from importlib.metadata import version

    import django
    from django.core import mail
    from helpdesk import email as hd_email
    from helpdesk.models import FollowUp, FollowUpAttachment, Queue, Ticket

    inbox = work / "maildir"
    aside = work / "aborted"
    inbox.mkdir()
    aside.mkdir()
    for name in files:
        shutil.copyfile(corpus / name, inbox / name)
    queue = Queue.objects.create(
        title="Support", slug="support", email_address="support@helpdesk.example",
        allow_email_submission=True, email_box_type="local",
        email_box_local_dir=str(inbox), logging_type="none",
    )

    class Count(logging.Handler):
        def __init__(self) -> None:
            super().__init__(logging.WARNING)
            self.records: list[str] = []

        def emit(self, record: logging.LogRecord) -> None:
            self.records.append(record.getMessage()[:200])

    logger = logging.getLogger("bench.helpdesk.queue")
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    counter = Count()
    logger.addHandler(counter)
    recorder = _OpenRecorder()
    hd_email.open = recorder  # a module global shadows the builtin ``open`` there

    aborts: list[dict[str, str]] = []
    passes = 0
    elapsed = 0.0
    while True:
        passes += 1
        recorder.last = None
        before = set(os.listdir(inbox))
        started = time.perf_counter()
        try:
            hd_email.process_queue(queue, logger=logger)
            elapsed += time.perf_counter() - started
            break
        except Exception as exc:  # noqa: BLE001 - the peer's own failure is what we measure
            elapsed += time.perf_counter() - started
            failed = recorder.last
            if failed is None or not os.path.exists(failed) or passes > len(files) + 1:
                aborts.append({"file": failed or "?", "error": f"{type(exc).__name__}: {exc}"[:300],
                               "action": "stopped"})
                break
            aborts.append({"file": os.path.basename(failed),
                           "error": f"{type(exc).__name__}: {exc}"[:300]})
            shutil.move(failed, aside / os.path.basename(failed))
            if not (before - {os.path.basename(failed)}) & set(os.listdir(inbox)):
                break
    left = sorted(os.listdir(inbox))
    imported = len(files) - len(left) - len(os.listdir(aside))
    by_message_id: dict[str, int] = {}
    for message_id, ticket_id in FollowUp.objects.values_list("message_id", "ticket_id"):
        if message_id:
            by_message_id[message_id.strip()] = ticket_id
    return {
        "django_helpdesk": version("django-helpdesk"),
        "django": django.get_version(),
        "sqlite_pragmas": pragmas,
        "n": len(files),
        "imported": imported,
        "failed": len(files) - imported,
        "aborted_passes": len(aborts),
        "aborted_on": aborts[:5],
        "left_in_folder": left[:20],
        "left_in_folder_count": len(left),
        "passes": passes,
        "elapsed_s": round(elapsed, 3),
        "messages_per_s": round(imported / elapsed, 1) if elapsed > 0 else None,
        "tickets": Ticket.objects.count(),
        "followups": FollowUp.objects.count(),
        "attachments": FollowUpAttachment.objects.count(),
        "acknowledgements_rendered": len(getattr(mail, "outbox", [])),
        "warnings_logged": len(counter.records),
        "warning_examples": counter.records[:5],
        "ticket_of_message_id": by_message_id,
        **setup,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Time django-helpdesk's local-folder import.")
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--files", type=Path, required=True, help="JSON list of file names")
    parser.add_argument("--pragmas", choices=sorted(PRAGMAS), default="django")
    args = parser.parse_args(argv)
    files = json.loads(args.files.read_text())
    result = run_peer(args.corpus, args.work, files, args.pragmas)
    json.dump(result, sys.stdout, ensure_ascii=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
