#!/usr/bin/env python3
"""Side-by-side comparison of clawback with restic, borg (and rustic, when on PATH).

One command (`benches/compare`) installs what is missing, builds clawback and the corpus
generator, generates an OpenClaw home, and for each tool, interleaved step by step, measures:
first backup, unchanged re-run, backup after one tick of activity, full restore, workspace-only
restore, and a "week" of ticks+backups. Per step: wall time, user+sys CPU, peak RSS, bytes written
to the repository, repository size. Prints a Markdown table, appends it to benches/RESULTS.md and
writes the raw numbers to benches/results/<date>-<scale>.json.

Standard library only (Python 3.11).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCHES = Path(__file__).resolve().parent
ROOT = BENCHES.parent
RELEASE = ROOT / "target" / "release"
BIN = RELEASE  # becomes a private copy in the work dir, so a rebuild during a run does not change what is measured
PASSWORD = "clawback-bench-password"  # throwaway repositories only

SCALES = {
    # name: generator arguments, default week ticks
    "small": (["--size", "500M", "--files", "20000"], 84),
    "large": (["--size", "3G", "--files", "100000"], 12),
    "smallfiles": (["--small-files", "--files", "200000"], 12),
    "quick": (["--size", "100M", "--files", "5000"], 4),
}

ALL_TOOLS = ["clawback", "restic", "borg", "rustic"]

# Steps in table order. kind: "backup" rows show bytes written; "restore" rows do not.
STEPS = [
    ("init", "init (incl. password KDF)", "init"),
    ("first", "first backup", "backup"),
    ("unchanged", "unchanged re-run", "backup"),
    ("tick", "backup after one tick", "backup"),
    ("restore_all", "restore everything", "restore"),
    ("restore_ws", "restore workspace only", "restore"),
]


def log(msg: str) -> None:
    print(f"[compare {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def first_line(text: str) -> str:
    """The most telling line of an error output: the first non-empty line mentioning an error, else the first."""
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    for l in lines:
        low = l.lower()
        if "error" in low or "fatal" in low or "failed" in low:
            return l[:300]
    return lines[0][:300] if lines else "(no output)"


# ---------------------------------------------------------------------------------------------
# Measuring a child process


@dataclass
class Run:
    cmd: list[str]
    rc: int = -1
    wall: float = 0.0
    user: float = 0.0
    sys: float = 0.0
    maxrss_kb: int = 0
    stdout: str = ""
    stderr: str = ""
    timed_out: bool = False

    @property
    def cpu(self) -> float:
        return self.user + self.sys


def run_measured(cmd: list[str], env: dict | None = None, cwd: Path | None = None,
                 timeout: float = 3600, logdir: Path | None = None, name: str = "run") -> Run:
    """Run cmd to completion; wall time, and rusage of the child from wait4 (ru_maxrss is KiB on Linux)."""
    logdir = logdir or Path(tempfile.gettempdir())
    out_p, err_p, ru_p = logdir / f"{name}.out", logdir / f"{name}.err", logdir / f"{name}.rusage"
    r = Run(cmd=[str(c) for c in cmd])
    # A child's ru_maxrss starts at the RSS of the process it was forked from (Linux records the old
    # mm's high-water mark at exec), so a child of this Python process never reports less than
    # Python's own RSS. GNU time forks the tool from a ~1 MiB process and reports its true peak.
    argv = ([TIME_BIN, "-o", str(ru_p), "-f", "%e %U %S %M %x"] if TIME_BIN else []) + r.cmd
    ru_p.unlink(missing_ok=True)
    with open(out_p, "wb") as out, open(err_p, "wb") as err:
        t0 = time.monotonic()
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                 env=env, cwd=cwd, start_new_session=True)
        except OSError as e:
            r.rc, r.stderr = 127, f"cannot start {cmd[0]}: {e}"
            return r

        def kill() -> None:
            r.timed_out = True
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            while True:
                try:
                    _, status, ru = os.wait4(p.pid, 0)
                    break
                except InterruptedError:
                    continue
        except BaseException:
            kill()
            raise
        finally:
            timer.cancel()
        r.wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    r.rc = p.returncode
    r.user, r.sys, r.maxrss_kb = ru.ru_utime, ru.ru_stime, ru.ru_maxrss
    if TIME_BIN:
        try:
            lines = ru_p.read_text().splitlines()
            _e, u, sy, m, x = lines[-1].split()
            r.user, r.sys, r.maxrss_kb = float(u), float(sy), int(m)
            sig = [l for l in lines if l.startswith("Command terminated by signal")]
            r.rc = 128 + int(sig[0].split()[-1]) if sig else int(x)
        except (OSError, ValueError, IndexError):
            pass  # GNU time itself failed or was killed: keep wait4's numbers
    r.stdout = out_p.read_text(errors="replace")
    r.stderr = err_p.read_text(errors="replace")
    if r.timed_out:
        r.stderr = f"timed out after {timeout:.0f}s\n" + r.stderr
    return r


TIME_BIN = shutil.which("time", path="/usr/bin:/bin") or ""


def sh(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)


def clawback_version(exe) -> str:
    """`clawback 0.1.0 @ <commit>` (`+ uncommitted changes` when engine/ or cli/ differ from it)."""
    v = sh([str(exe), "--version"])
    version = (v.stdout.strip() or "clawback (no --version)") if v.returncode == 0 else "clawback (no --version)"
    git = sh(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    dirty = sh(["git", "-C", str(ROOT), "status", "--porcelain", "--", "engine", "cli"]).stdout.strip()
    return version + (f" @ {git.stdout.strip()}{' + uncommitted changes' if dirty else ''}"
                      if git.returncode == 0 else " @ uncommitted tree")


# ---------------------------------------------------------------------------------------------
# Files and trees


def tree_size(path: Path) -> tuple[int, int]:
    """(apparent bytes of regular files, number of regular files) under path."""
    total = count = 0
    for dirpath, _dirs, files in os.walk(path):
        for f in files:
            try:
                st = os.lstat(os.path.join(dirpath, f))
            except OSError:
                continue
            if (st.st_mode & 0o170000) == 0o100000:
                total += st.st_size
                count += 1
    return total, count


SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def sqlite_logical_digest(db: str) -> str:
    """Digest of a SQLite database's content (its WAL applied), from a private copy so the original is
    never checkpointed or otherwise touched."""
    with tempfile.TemporaryDirectory(prefix="compare-sqlite-") as tmp:
        copy = os.path.join(tmp, "db")
        shutil.copyfile(db, copy)
        for side in ("-wal", "-journal"):
            if os.path.exists(db + side):
                shutil.copyfile(db + side, copy + side)
        con = sqlite3.connect(copy)
        try:
            h = hashlib.sha256()
            for line in con.iterdump():
                h.update(line.encode())
                h.update(b"\n")
            return h.hexdigest()
        finally:
            con.close()


def is_sqlite(p: str) -> bool:
    try:
        with open(p, "rb") as f:
            return f.read(16) == SQLITE_MAGIC
    except OSError:
        return False


def tree_digest(path: Path) -> tuple[str, int, int]:
    """A digest of relative paths, file contents and symlink targets; (hex, files, bytes).

    SQLite databases are compared by content: a backup tool may store a consistent image of a live
    database (its WAL checkpointed in) rather than the raw files, which is the better restore. So a
    database counts by its logical dump, and its -wal/-shm/-journal files do not count."""
    h = hashlib.sha256()
    files = nbytes = 0
    entries = []
    for dirpath, dirs, names in os.walk(path):
        dirs.sort()
        for n in names:
            entries.append(os.path.join(dirpath, n))
    present = set(entries)
    for p in sorted(entries):
        rel = os.path.relpath(p, path)
        st = os.lstat(p)
        kind = st.st_mode & 0o170000
        if kind == 0o120000:
            h.update(f"L {rel} {os.readlink(p)}\n".encode())
        elif kind == 0o100000:
            side = next((x for x in SQLITE_SIDECARS if p.endswith(x)), None)
            if side and p[: -len(side)] in present and is_sqlite(p[: -len(side)]):
                continue
            if is_sqlite(p):
                try:
                    h.update(f"D {rel} {sqlite_logical_digest(p)}\n".encode())
                except sqlite3.Error as e:
                    h.update(f"D {rel} unreadable {e}\n".encode())
            else:
                fh = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        fh.update(block)
                h.update(f"F {rel} {st.st_size} {fh.hexdigest()}\n".encode())
            files += 1
            nbytes += st.st_size
    return h.hexdigest(), files, nbytes


def locate_restored(target: Path, src: Path) -> Path | None:
    """Where a tool put `src` inside `target`: target/<abs src>, target/<basename>, or target itself."""
    for cand in (target / str(src).lstrip("/"), target / src.name, target):
        if cand.is_dir() and any(cand.iterdir()):
            return cand
    return None


def prepare_dirs(t: "Tool") -> None:
    """A tool's repository parent, cache and XDG dirs in its work dir, and an explicit, empty
    clawback config: no user or machine config may change what is measured."""
    t.repo.parent.mkdir(parents=True, exist_ok=True)
    t.cache_dir.mkdir(parents=True, exist_ok=True)
    (t.work / "xdg" / t.name).mkdir(parents=True, exist_ok=True)
    (t.work / "xdg" / "clawback-none.json").write_text("{}\n")


def lower_median(runs: list, key):
    """The run of median `key` (the lower middle one for an even count): a real run, not an average."""
    ordered = sorted(runs, key=key)
    return ordered[(len(ordered) - 1) // 2]


def rmtree(p: Path) -> None:
    shutil.rmtree(p, ignore_errors=True)


def mib(n: float) -> float:
    return n / (1 << 20)


# ---------------------------------------------------------------------------------------------
# Machine facts


class Cache:
    """Drops the page cache between steps when the kernel lets us."""

    def __init__(self, enabled: bool) -> None:
        self.ok = False
        if enabled:
            try:
                os.sync()
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
                self.ok = True
            except OSError:
                self.ok = False

    def drop(self) -> None:
        if self.ok:
            os.sync()
            try:
                with open("/proc/sys/vm/drop_caches", "w") as f:
                    f.write("3\n")
            except OSError:
                self.ok = False

    @property
    def label(self) -> str:
        return "cold cache (page cache dropped before every step)" if self.ok else "warm cache (could not drop the page cache)"


def machine_info() -> dict:
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release, "cpu": "unknown", "mem_gib": None}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                info["mem_gib"] = round(int(line.split()[1]) / (1 << 20), 1)
                break
    except OSError:
        pass
    return info


def loadavg() -> float:
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return -1.0


# ---------------------------------------------------------------------------------------------
# Tools


@dataclass
class Tool:
    """One backup program: how to init, back up, restore; its environment and caches in the work dir."""

    name: str
    work: Path
    exe: str = ""
    version: str = "?"
    error: str | None = None  # set when the tool cannot run at all
    notes: list[str] = field(default_factory=list)
    compression: str = ""
    kdf: str = ""
    archive_seq: int = 0

    @property
    def repo(self) -> Path:
        return self.work / "repos" / self.name

    @property
    def cache_dir(self) -> Path:
        return self.work / "caches" / self.name

    def env(self) -> dict:
        e = dict(os.environ)
        xdg = self.work / "xdg" / self.name
        e.update(XDG_CACHE_HOME=str(xdg / "cache"), XDG_CONFIG_HOME=str(xdg / "config"),
                 XDG_DATA_HOME=str(xdg / "data"))
        return e

    def init(self) -> list[str]:
        raise NotImplementedError

    def backup(self, src: Path) -> list[str]:
        raise NotImplementedError

    def restore_all(self, src: Path, target: Path) -> list[str]:
        raise NotImplementedError

    def restore_ws_variants(self, ws: Path, target: Path) -> list[tuple[str, list[str], Path | None]]:
        """(label, command, cwd) to try in order; the first that restores files counts."""
        raise NotImplementedError

    def ok_codes(self) -> set[int]:
        return {0}

    def warn_codes(self) -> set[int]:
        return set()


class Restic(Tool):
    def setup(self) -> None:
        self.exe = shutil.which("restic") or ""
        if not self.exe:
            self.error = "restic not installed"
            return
        self.version = sh([self.exe, "version"]).stdout.strip().split(" compiled")[0]
        self.compression = "auto (zstd, ≈ level 3; repository v2)"
        self.kdf = "scrypt, calibrated to ~0.5 s"

    def env(self) -> dict:
        e = super().env()
        e.update(RESTIC_PASSWORD=PASSWORD, RESTIC_REPOSITORY=str(self.repo), RESTIC_CACHE_DIR=str(self.cache_dir))
        return e

    def g(self) -> list[str]:
        return [self.exe, "-r", str(self.repo), "--cache-dir", str(self.cache_dir)]

    def init(self):
        return self.g() + ["init", "--repository-version", "2"]

    def backup(self, src):
        return self.g() + ["backup", "--compression", "auto", str(src)]

    def restore_all(self, src, target):
        return self.g() + ["restore", "latest", "--target", str(target)]

    def restore_ws_variants(self, ws, target):
        return [("--include WS", self.g() + ["restore", "latest", "--target", str(target), "--include", str(ws)], None)]

    def warn_codes(self):
        return {3}


class Rustic(Tool):
    def setup(self) -> None:
        self.exe = shutil.which("rustic") or ""
        if not self.exe:
            self.error = "rustic not on PATH (not built by this script)"
            return
        self.version = sh([self.exe, "--version"]).stdout.strip()
        self.compression = "zstd 3 (default)"
        self.kdf = "scrypt (restic format)"

    def env(self):
        e = super().env()
        e.update(RUSTIC_PASSWORD=PASSWORD, RUSTIC_REPOSITORY=str(self.repo), RUSTIC_CACHE_DIR=str(self.cache_dir),
                 RUSTIC_NO_PROGRESS="true")
        return e

    def g(self):
        return [self.exe, "-r", str(self.repo), "--cache-dir", str(self.cache_dir), "--no-progress"]

    def init(self):
        return self.g() + ["init"]

    def backup(self, src):
        return self.g() + ["backup", str(src)]

    def restore_all(self, src, target):
        return self.g() + ["restore", "latest", str(target)]

    def restore_ws_variants(self, ws, target):
        return [("latest:WS", self.g() + ["restore", f"latest:{ws}", str(target / str(ws).lstrip('/'))], None)]

    def warn_codes(self):
        return {3}


class Borg(Tool):
    major = 1

    def setup(self) -> None:
        self.exe = shutil.which("borg") or ""
        if not self.exe:
            self.error = "borg not installed"
            return
        self.version = sh([self.exe, "--version"]).stdout.strip()
        try:
            self.major = int(self.version.split()[1].split(".")[0])
        except (IndexError, ValueError):
            self.major = 1
        self.compression = "zstd,3"
        self.kdf = "PBKDF2-SHA256, 100k iterations" if self.major < 2 else "argon2 (borg 2 default)"

    def env(self):
        e = super().env()
        e.update(BORG_PASSPHRASE=PASSWORD, BORG_BASE_DIR=str(self.cache_dir), BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
                 BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="no", BORG_REPO=str(self.repo))
        return e

    def init(self):
        if self.major >= 2:
            return [self.exe, "-r", str(self.repo), "repo-create", "--encryption=repokey-blake2-aes-ocb"]
        return [self.exe, "init", "--encryption=repokey-blake2", str(self.repo)]

    def backup(self, src):
        self.archive_seq += 1
        name = f"a{self.archive_seq:04d}"
        if self.major >= 2:
            return [self.exe, "-r", str(self.repo), "create", "--compression", "zstd,3", name, str(src)]
        return [self.exe, "create", "--compression", "zstd,3", f"{self.repo}::{name}", str(src)]

    def _latest(self) -> str:
        return f"a{self.archive_seq:04d}"

    def _extract(self, paths: list[str]) -> list[str]:
        if self.major >= 2:
            return [self.exe, "-r", str(self.repo), "extract", self._latest()] + paths
        return [self.exe, "extract", f"{self.repo}::{self._latest()}"] + paths

    def restore_all(self, src, target):
        return self._extract([])  # run with cwd=target

    def restore_ws_variants(self, ws, target):
        return [("extract PATH", self._extract([str(ws).lstrip("/")]), target)]

    def warn_codes(self):
        return {1}


class Clawback(Tool):
    build_error: str | None = None
    bin_override: str | None = None
    keep_default_excludes: bool = False
    backup_extra: list = []

    def setup(self) -> None:
        exe = (Path(self.bin_override) if self.bin_override else BIN / "clawback").resolve()
        if not exe.exists():
            self.error = "target/release/clawback not built" + (f": {self.build_error}" if self.build_error else "")
            return
        if self.build_error:
            self.notes.append(f"build failed ({self.build_error}); used the existing binary")
        self.exe = str(exe)
        self.version = clawback_version(self.exe)
        self.compression = "zstd 3 (default)"
        self.kdf = "argon2id (default)"
        # clawback leaves out OpenClaw runtime files (tmp/, *.pid, locks) by default; the others do not.
        # Same input for every tool unless asked to measure clawback exactly as shipped.
        self.backup_extra = []
        if not self.keep_default_excludes and "--no-default-excludes" in sh([self.exe, "backup", "--help"]).stdout:
            self.backup_extra = ["--no-default-excludes"]
            self.notes.append("run with --no-default-excludes so that it reads the same files as the others")
        elif self.keep_default_excludes:
            self.notes.append("run with its default excludes (backs up fewer files than the others)")

    def env(self):
        e = super().env()
        for k in list(e):
            if k.startswith(("CLAWBACK_", "OPENCLAW_")):
                del e[k]
        e.update(CLAWBACK_PASSWORD=PASSWORD, CLAWBACK_CACHE_DIR=str(self.cache_dir),
                 CLAWBACK_CONFIG=str(self.work / "xdg" / "clawback-none.json"))
        return e

    def g(self):
        return [self.exe, "--repo", str(self.repo)]

    def init(self):
        return self.g() + ["init"]

    def backup(self, src):
        return self.g() + ["--quiet", "--json", "backup", *self.backup_extra, str(src)]

    def restore_all(self, src, target):
        return self.g() + ["--quiet", "restore", "latest", "--target", str(target)]

    def restore_ws_variants(self, ws, target):
        base = self.g() + ["--quiet", "restore", "latest", "--target", str(target)]
        return [
            ("--include WS", base + ["--include", str(ws)], None),
            ("--include WS/**", base + ["--include", f"{ws}/**"], None),
            ("--only workspace", base + ["--only", "workspace"], None),
        ]

    def warn_codes(self):
        return {3}


TOOL_CLASSES = {"clawback": Clawback, "restic": Restic, "borg": Borg, "rustic": Rustic}


# ---------------------------------------------------------------------------------------------
# Installing and building


def ensure_packages(tools: list[str], allow_install: bool) -> list[str]:
    notes = []
    want = {"restic": "restic", "borg": "borgbackup"}
    missing = [pkg for t, pkg in want.items() if t in tools and not shutil.which(t)]
    if not TIME_BIN:
        missing.append("time")  # GNU time: true peak RSS of each tool (see run_measured)
    if not missing:
        return notes
    if not allow_install:
        return [f"not installed (and --no-install): {' '.join(missing)}"]
    log(f"installing {' '.join(missing)} from Debian packages")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq"] + missing):
        r = sh(cmd, env=env)
        if r.returncode != 0:
            notes.append(f"`{' '.join(cmd)}` failed: {first_line(r.stderr)}")
            break
    return notes


def cargo_build(args: list[str], what: str) -> str | None:
    """Build; None on success, else the first error line."""
    log(f"building {what}")
    r = sh(["nice", "cargo", "build", "--release", "--quiet"] + args, cwd=ROOT)
    if r.returncode == 0:
        return None
    errs = [l for l in r.stderr.splitlines() if l.startswith("error")]
    return (errs[0] if errs else first_line(r.stderr))[:300]


# ---------------------------------------------------------------------------------------------
# The corpus


class Corpus:
    """The OpenClaw home under test: made by clawback-corpus, or by a small built-in stand-in."""

    def __init__(self, home: Path, builtin: bool) -> None:
        self.home = home
        self.builtin = builtin
        self.state = home / ".openclaw"
        self.workspace = self.state / "workspace"

    def generate(self, gen_args: list[str], seed: int = 1) -> Run:
        if self.builtin:
            t0 = time.monotonic()
            builtin_generate(self.home, gen_args, seed)
            return Run(cmd=["builtin-generate"], rc=0, wall=time.monotonic() - t0)
        return run_measured([BIN / "clawback-corpus", "generate", "--out", self.home, *gen_args, "--seed", str(seed)],
                            logdir=self.home.parent, name="corpus-generate", timeout=7200)

    def tick(self, seed: int) -> Run:
        if self.builtin:
            t0 = time.monotonic()
            builtin_tick(self.home, seed)
            return Run(cmd=["builtin-tick"], rc=0, wall=time.monotonic() - t0)
        return run_measured([BIN / "clawback-corpus", "tick", "--home", self.home, "--seed", str(seed)],
                            logdir=self.home.parent, name="corpus-tick")


def _parse_size(s: str) -> int:
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    s = s.strip().upper().rstrip("B").rstrip("I")
    return int(float(s[:-1]) * mult[s[-1]]) if s[-1] in mult else int(s)


def builtin_generate(home: Path, gen_args: list[str], seed: int) -> None:
    """A rough stand-in for clawback-corpus (used only when it is not available): sessions as JSONL,
    a SQLite memory, markdown in the workspace, some incompressible media, a few duplicated files."""
    size = _parse_size(gen_args[gen_args.index("--size") + 1]) if "--size" in gen_args else 200 << 20
    nfiles = int(gen_args[gen_args.index("--files") + 1]) if "--files" in gen_args else 5000
    if "--small-files" in gen_args:
        size = min(size, nfiles * 4096)
    rnd = random.Random(seed)
    state = home / ".openclaw"
    ws = state / "workspace"
    for d in (ws / "memory", ws / "skills", state / "agents" / "main" / "sessions", state / "media", state / "memory"):
        d.mkdir(parents=True, exist_ok=True)
    (state / "openclaw.json").write_text(json.dumps({"agents": {"defaults": {"workspace": str(ws)}}}, indent=2))
    words = "the agent tool call result user assistant memory file skill cron session token model reply".split()
    db = sqlite3.connect(state / "memory" / "main.sqlite")
    db.execute("create table if not exists chunks(id integer primary key, path text, text text, embedding blob)")
    db.executemany("insert into chunks(path, text, embedding) values (?,?,?)",
                   [(f"memory/{i}.md", " ".join(rnd.choices(words, k=60)), rnd.randbytes(1536)) for i in range(4000)])
    db.commit()
    db.close()
    per_file = max(512, size // max(1, nfiles))
    written = 0
    for i in range(nfiles):
        r = rnd.random()
        if r < 0.15:  # media: incompressible
            p = state / "media" / f"m{i:06d}.jpg"
            p.write_bytes(rnd.randbytes(int(per_file * rnd.uniform(0.5, 3))))
        elif r < 0.6:  # session transcripts
            p = state / "agents" / "main" / "sessions" / f"s{i:06d}.jsonl"
            n = max(1, int(per_file * rnd.uniform(0.3, 1.7)) // 120)
            p.write_text("".join(json.dumps({"role": rnd.choice(["user", "assistant", "tool"]), "n": j,
                                             "text": " ".join(rnd.choices(words, k=12))}) + "\n" for j in range(n)))
        elif r < 0.65 and i > 10:  # an exact duplicate of something already written
            src = rnd.choice([p for p in (ws / "memory").iterdir()][:50] or [state / "openclaw.json"])
            p = ws / "skills" / f"copy{i:06d}.md"
            shutil.copyfile(src, p)
        else:  # workspace markdown
            p = ws / "memory" / f"n{i:06d}.md"
            p.write_text("\n".join(" ".join(rnd.choices(words, k=14)) for _ in range(max(1, int(per_file * rnd.uniform(0.2, 1.5)) // 90))))
        written += p.stat().st_size
        if written >= size and i >= nfiles // 2:
            break


def builtin_tick(home: Path, seed: int) -> None:
    """Two hours of activity: appended sessions, a new session, memory rows, edited notes, a new picture."""
    rnd = random.Random(seed)
    state = home / ".openclaw"
    sessions = sorted((state / "agents" / "main" / "sessions").glob("*.jsonl"))
    for p in rnd.sample(sessions, min(5, len(sessions))):
        with open(p, "a") as f:
            for j in range(rnd.randint(5, 60)):
                f.write(json.dumps({"role": "assistant", "tick": seed, "n": j, "text": "x" * rnd.randint(20, 400)}) + "\n")
    (state / "agents" / "main" / "sessions" / f"tick{seed}.jsonl").write_text(
        "".join(json.dumps({"tick": seed, "n": j}) + "\n" for j in range(rnd.randint(50, 500))))
    db = sqlite3.connect(state / "memory" / "main.sqlite")
    db.executemany("insert into chunks(path, text, embedding) values (?,?,?)",
                   [(f"tick/{seed}", "note " * 20, rnd.randbytes(1536)) for _ in range(rnd.randint(10, 100))])
    db.commit()
    db.close()
    notes = sorted((state / "workspace" / "memory").glob("*.md"))
    for p in rnd.sample(notes, min(3, len(notes))):
        with open(p, "a") as f:
            f.write(f"\n- tick {seed}: remembered something\n")
    if rnd.random() < 0.3:
        (state / "media" / f"tick{seed}.jpg").write_bytes(rnd.randbytes(rnd.randint(50_000, 2_000_000)))


# ---------------------------------------------------------------------------------------------
# One scale


def fmt_num(x: float | None, nd: int = 2) -> str:
    if x is None:
        return "–"
    if isinstance(x, int):
        return f"{x:,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}f}"


def read_kdf(tool: Tool) -> str | None:
    """The password KDF's actual parameters, from the new repository's key file (restic, rustic, clawback)."""
    keys = tool.repo / "keys"
    try:
        kf = json.loads(next(p for p in sorted(keys.iterdir()) if p.is_file()).read_text())
    except (OSError, StopIteration, ValueError):
        return None
    kdf = str(kf.get("kdf", "?"))
    if kdf == "scrypt":
        n = int(kf.get("N", 0))
        return f"scrypt N={n} ({n * 128 * int(kf.get('r', 0)) >> 20} MiB) r={kf.get('r')} p={kf.get('p')}"
    if kdf.startswith("argon2"):
        return f"{kdf} m={int(kf.get('m_cost', 0)) >> 10} MiB t={kf.get('t_cost')} p={kf.get('p_cost')}"
    return kdf


class Bench:
    def __init__(self, args, scale: str, work: Path, tools: list[Tool], corpus: Corpus, cache: Cache) -> None:
        self.args, self.scale, self.work, self.tools, self.corpus, self.cache = args, scale, work, tools, corpus, cache
        self.results: dict[str, dict[str, dict]] = {s[0]: {} for s in STEPS}
        self.results["week"] = {}
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.dead: dict[str, str] = {t.name: t.error for t in tools if t.error}
        self.ceiling: dict | None = None
        self.corpus_info: dict = {}

    # -- helpers

    def measure(self, tool: Tool, step: str, cmd: list[str], cwd: Path | None = None, name: str | None = None) -> tuple[Run, dict]:
        before = tree_size(tool.repo)[0] if tool.repo.exists() else 0
        self.cache.drop()
        r = run_measured(cmd, env=tool.env(), cwd=cwd, timeout=self.args.step_timeout, logdir=self.logs,
                         name=name or f"{step}-{tool.name}")
        after, nfiles = tree_size(tool.repo) if tool.repo.exists() else (0, 0)
        cache_bytes = tree_size(tool.cache_dir)[0] + tree_size(tool.work / "xdg" / tool.name)[0]
        res = {"wall_s": r.wall, "user_s": r.user, "sys_s": r.sys, "cpu_s": r.cpu, "maxrss_kib": r.maxrss_kb,
               "written_bytes": after - before, "repo_bytes": after, "repo_files": nfiles, "cache_bytes": cache_bytes, "rc": r.rc,
               "cmd": " ".join(r.cmd)}
        if r.rc in tool.ok_codes():
            pass
        elif r.rc in tool.warn_codes():
            res["warning"] = f"exit {r.rc}: {first_line(r.stderr)}"
        else:
            res["error"] = f"exit {r.rc}: {first_line(r.stderr or r.stdout)}"
        if tool.name == "clawback" and step not in ("init",) and r.stdout.strip():
            obj = None
            for text in [r.stdout] + list(reversed(r.stdout.strip().splitlines())):
                try:
                    obj = json.loads(text)
                    break
                except ValueError:
                    continue
            if isinstance(obj, dict):
                # Counters as they are; lists (changed, skipped, errors) only as counts, and errors' first item.
                res["tool_json"] = {k: (len(v) if isinstance(v, list) else v) for k, v in obj.items()
                                    if not isinstance(v, dict)}
                if obj.get("errors"):
                    res["tool_json"]["first_error"] = obj["errors"][0]
        return r, res

    def record(self, step: str, tool: Tool, res: dict) -> None:
        self.results[step][tool.name] = res
        status = res.get("error") or res.get("warning") or "ok"
        log(f"[{self.scale}] {step:<12} {tool.name:<9} {res.get('wall_s', 0):8.2f}s wall {res.get('cpu_s', 0):8.2f}s cpu "
            f"{res.get('maxrss_kib', 0) / 1024:7.1f} MiB rss +{mib(res.get('written_bytes', 0)):8.1f} MiB  {status}")

    def alive(self) -> list[Tool]:
        return [t for t in self.tools if t.name not in self.dead]

    def skip_dead(self, step: str) -> None:
        for t in self.tools:
            if t.name in self.dead and t.name not in self.results[step]:
                self.results[step][t.name] = {"error": f"skipped: {self.dead[t.name]}"}

    # -- the steps

    def run(self) -> None:
        src = self.corpus.state.resolve()
        ws = self.corpus.workspace.resolve()
        a = self.args

        self.run_ceiling(src)

        for t in self.alive():
            rmtree(t.repo)
            prepare_dirs(t)
            _, res = self.measure(t, "init", t.init())
            self.record("init", t, res)
            if "error" in res:
                self.dead[t.name] = f"init failed: {res['error']}"
            else:
                t.kdf = read_kdf(t) or t.kdf
        self.skip_dead("init")

        for step in ("first", "unchanged"):
            for t in self.alive():
                _, res = self.measure(t, step, t.backup(src))
                self.record(step, t, res)
                if step == "first" and "error" in res:
                    self.dead[t.name] = f"first backup failed: {res['error']}"
            self.skip_dead(step)
            if step == "first":
                self.more_rounds("first", src)
        fb = self.results["first"]
        for name, res in fb.items():
            if "wall_s" in res and "error" not in res and res["wall_s"] > 0:
                res["throughput_mb_s"] = self.corpus_info["bytes"] / 1e6 / res["wall_s"]

        tick = self.corpus.tick(2)
        if tick.rc != 0:
            log(f"[{self.scale}] corpus tick failed: {first_line(tick.stderr)}")
            for t in self.tools:
                self.results["tick"][t.name] = {"error": f"corpus tick failed: {first_line(tick.stderr)}"}
        else:
            for t in self.alive():
                _, res = self.measure(t, "tick", t.backup(src))
                self.record("tick", t, res)
            self.skip_dead("tick")

        # Restores: of the snapshot just taken, so the source tree is the reference.
        ref_all = tree_digest(src) if a.verify else None
        ref_ws = tree_digest(ws) if a.verify and ws.is_dir() else None
        # Each restore writes a new folder, and all are deleted only after the last: on ext4
        # without a journal (this machine's root file system), creating files within a minute of
        # deleting many makes the kernel step over every recently freed inode
        # (`recently_deleted`), so a restore right after the previous tool's tree was deleted took
        # twice as long (12 s of system time instead of 5) whoever ran it.
        for t in self.alive():
            target = self.work / "restore" / f"{t.name}-all"
            rmtree(target)
            target.mkdir(parents=True)
            _, res = self.measure(t, "restore_all", t.restore_all(src, target), cwd=target)
            if "error" not in res:
                self.verify(res, target, src, ref_all)
            self.record("restore_all", t, res)
        self.skip_dead("restore_all")
        # (The workspace restores come next: room for each tool's.)
        ws_room = tree_size(ws)[0] * 1.1 * len(self.alive()) if ws.is_dir() else 0
        self.more_rounds("restore_all", src, reserve=ws_room)

        for t in self.alive():
            target = self.work / "restore" / f"{t.name}-ws"
            res = None
            tried = []
            for label, cmd, cwd in t.restore_ws_variants(ws, target):
                rmtree(target)
                target.mkdir(parents=True)
                _, res = self.measure(t, "restore_ws", cmd, cwd=cwd or target, name=f"restore_ws-{t.name}-{len(tried)}")
                res["variant"] = label
                if "error" not in res:
                    got = locate_restored(target, ws)
                    _, nfiles = tree_size(target)
                    if got is not None and nfiles > 0:
                        self.verify(res, target, ws, ref_ws)
                        break
                    res["error"] = "restored no files"
                tried.append(f"{label}: {res['error']}")
            if tried and res is not None and "error" not in res:
                res["note"] = "after " + "; ".join(tried)
            elif tried and res is not None:
                res["error"] = " / ".join(tried)
            if res is not None:
                self.record("restore_ws", t, res)
        self.skip_dead("restore_ws")
        rmtree(self.work / "restore")

        self.run_week(src)

    def more_rounds(self, step: str, src: Path, reserve: float = 0) -> None:
        """Runs `step` (a first backup, or a full restore of the first round's repository) again
        for rounds 2..N, each round in a rotated tool order, then keeps for each tool the run of
        median wall time (the lower middle one for an even count), with every round's wall time
        beside it. This machine's speed drifts by 10-20% from minute to minute (a shared VM
        host), so one run each, always in the same order, can flip a ratio; rotating puts every
        tool first (right after the previous step) once. A restore round is run only while the
        disk has room for it and `reserve` bytes more (what the later steps write)."""
        rounds = self.args.rounds
        if rounds <= 1:
            return
        runs: dict[str, list[dict]] = {t.name: [self.results[step][t.name]] for t in self.alive()
                                       if "error" not in self.results[step].get(t.name, {"error": 1})}
        out_of_room = False
        need = tree_size(src)[0] * 1.1 + reserve if step != "first" else 0
        for r in range(1, rounds):
            if out_of_room:
                break
            order = [t for t in self.alive() if t.name in runs]
            order = order[r % len(order):] + order[:r % len(order)] if order else order
            for t in order:
                if step == "first":
                    # The same tool (a copy keeps what `setup` found: its flags, its version), in
                    # its own work dir: a new repository and cache each round.
                    clone = copy.copy(t)
                    clone.work = self.work / "rounds" / f"r{r}"
                    rmtree(clone.work)
                    prepare_dirs(clone)
                    _, ini = self.measure(clone, "init", clone.init(), name=f"init-{t.name}-r{r}")
                    if "error" in ini:
                        log(f"[{self.scale}] round {r + 1} init {t.name}: {ini['error']}")
                        continue
                    _, res = self.measure(clone, step, clone.backup(src), name=f"{step}-{t.name}-r{r}")
                    rmtree(clone.work)
                else:
                    # Every restored tree is kept until the last restore (see the restores in
                    # `run`), so each round needs a corpus's worth of room.
                    free = shutil.disk_usage(self.work).free
                    if free < need:
                        log(f"[{self.scale}] {step}: {free / 2**30:.1f} GiB free, {need / 2**30:.1f} GiB needed for "
                            f"round {r + 1}: no more rounds (use fewer --rounds or a larger --workdir)")
                        out_of_room = True
                        break
                    target = self.work / "restore" / f"{t.name}-all-r{r}"
                    rmtree(target)
                    target.mkdir(parents=True)
                    _, res = self.measure(t, step, t.restore_all(src, target), cwd=target, name=f"{step}-{t.name}-r{r}")
                log(f"[{self.scale}] {step:<12} {t.name:<9} round {r + 1}: {res.get('wall_s', 0):8.2f}s wall "
                    f"{res.get('cpu_s', 0):8.2f}s cpu {res.get('maxrss_kib', 0) / 1024:7.1f} MiB rss  "
                    f"{res.get('error', 'ok')}")
                if "error" not in res:
                    runs[t.name].append(res)
        for name, rs in runs.items():
            first = self.results[step][name]
            med = dict(lower_median(rs, key=lambda x: x["wall_s"]))
            # What only the first round measured (the verification, the write into the kept
            # repository) stays; the timings are the median round's.
            for k in ("verified", "restored_files", "restored_bytes", "warning", "written_bytes", "repo_bytes", "repo_files",
                      "throughput_mb_s"):
                if k in first:
                    med[k] = first[k]
                else:
                    med.pop(k, None)
            med["rounds_wall_s"] = [x["wall_s"] for x in rs]
            med["rounds"] = len(rs)
            self.results[step][name] = med
            log(f"[{self.scale}] {step:<12} {name:<9} median of {len(rs)}: {med['wall_s']:.2f}s "
                f"(rounds {', '.join(f'{w:.2f}' for w in med['rounds_wall_s'])})")

    def verify(self, res: dict, target: Path, src: Path, ref) -> None:
        got = locate_restored(target, src)
        if got is None:
            res["warning"] = "restore: cannot find the restored tree"
            return
        if ref is None:
            return
        digest, files, nbytes = tree_digest(got)
        res["restored_files"], res["restored_bytes"] = files, nbytes
        if digest != ref[0]:
            res["warning"] = f"restore differs from source: {files} files/{nbytes} B vs {ref[1]}/{ref[2]}"
        else:
            res["verified"] = True

    def run_week(self, src: Path) -> None:
        n = self.args.week_ticks_for(self.scale)
        if n <= 0:
            return
        series: dict[str, list[dict]] = {t.name: [] for t in self.alive()}
        for i in range(n):
            tick = self.corpus.tick(1000 + i)
            if tick.rc != 0:
                log(f"corpus tick failed, week stops at {i}: {first_line(tick.stderr)}")
                break
            for t in self.alive():
                if t.name not in series:
                    continue
                _, res = self.measure(t, "week", t.backup(src), name=f"week-{t.name}")
                series[t.name].append(res)
                if "error" in res:
                    log(f"[{self.scale}] week {i} {t.name}: {res['error']}")
            if (i + 1) % 10 == 0 or i + 1 == n:
                log(f"[{self.scale}] week: {i + 1}/{n} ticks done")
        for t in self.tools:
            runs = series.get(t.name)
            if not runs:
                self.results["week"][t.name] = {"error": f"skipped: {self.dead[t.name]}" if t.name in self.dead else "no runs"}
                continue
            errs = [r["error"] for r in runs if "error" in r]
            walls = [r["wall_s"] for r in runs]
            summary = {
                "ticks": len(runs),
                "wall_s": sum(walls),
                "mean_wall_s": sum(walls) / len(walls),
                "max_wall_s": max(walls),
                "cpu_s": sum(r["cpu_s"] for r in runs),
                "maxrss_kib": max(r["maxrss_kib"] for r in runs),
                "written_bytes": sum(r["written_bytes"] for r in runs),
                "repo_bytes": runs[-1]["repo_bytes"],
                "repo_files": runs[-1]["repo_files"],
                "cache_bytes": runs[-1]["cache_bytes"],
                "runs": runs,
            }
            if errs:
                summary["error" if len(errs) == len(runs) else "warning"] = f"{len(errs)}/{len(runs)} failed: {errs[0]}"
            self.results["week"][t.name] = summary

    def run_ceiling(self, src: Path) -> None:
        exe = BIN / "ceiling"
        if self.args.no_ceiling:
            return
        if not exe.exists():
            self.ceiling = {"error": "ceiling binary not built"}
            return
        # One process per mode, so that each starts from the same (cold) page cache as a first backup.
        for mode in ("single", "parallel"):
            self.cache.drop()
            r = run_measured([exe, "--json", "--mode", mode, src], logdir=self.logs, name=f"ceiling-{mode}",
                             timeout=self.args.step_timeout)
            if r.rc != 0:
                self.ceiling = {"error": first_line(r.stderr)}
                return
            try:
                out = json.loads(r.stdout)
            except ValueError:
                self.ceiling = {"error": "unparsable ceiling output"}
                return
            if self.ceiling is None:
                self.ceiling = out
            else:
                self.ceiling["runs"] += out["runs"]
        for run in self.ceiling.get("runs", []):
            log(f"[{self.scale}] ceiling {run['mode']}: {run['total_mb_s']:.1f} MB/s ({run['threads']} threads)")

    def ceiling_mb_s(self) -> float | None:
        """The best of the single-threaded and all-core runs (on a busy machine all-core can lose)."""
        vals = [r.get("total_mb_s") for r in (self.ceiling or {}).get("runs", []) if r.get("total_mb_s")]
        return max(vals) if vals else None

    # -- output

    def table(self) -> str:
        names = [t.name for t in self.tools]
        ratio = "clawback" in names and "restic" in names
        head = "| step | metric | " + " | ".join(names) + (" | clawback/restic |" if ratio else " |")
        sep = "|---|---|" + "---:|" * len(names) + ("---:|" if ratio else "")
        rows = [head, sep]
        errors = self.errors = []

        def cell(step: str, name: str, key: str, scale: float):
            res = self.results.get(step, {}).get(name)
            if res is None:
                return None, "–"
            if "error" in res:
                if res["error"].startswith("skipped"):
                    return None, "skipped"
                text = res["error"].replace("|", "/")
                if text not in errors:
                    errors.append(text)
                return None, f"failed [{errors.index(text) + 1}]"
            v = res.get(key)
            if key == "verified":
                if v:
                    return None, "✓ same"
                return None, ("✗ differs ⚠" if "differs" in res.get("warning", "") else "–")
            if v is None:
                return None, "–"
            v = v * scale if scale != 1.0 else v
            mark = " ⚠" if "warning" in res else ""
            return v, fmt_num(v) + mark

        def add(step: str, label: str, metric: str, key: str, scale: float = 1.0, first: bool = False):
            vals = [cell(step, n, key, scale) for n in names]
            row = f"| {label if first else ''} | {metric} | " + " | ".join(v[1] for v in vals) + " |"
            if ratio:
                c, r = vals[names.index("clawback")][0], vals[names.index("restic")][0]
                row += (f" {c / r:.2f} |" if c is not None and r else " – |")
            rows.append(row)

        for step, label, kind in STEPS:
            add(step, label, "wall s", "wall_s", first=True)
            if kind == "init":
                continue
            add(step, label, "CPU s (user+sys)", "cpu_s")
            add(step, label, "peak RSS MiB", "maxrss_kib", 1 / 1024)
            if kind == "backup":
                add(step, label, "written MiB", "written_bytes", 1 / (1 << 20))
            if kind == "restore" and self.args.verify:
                add(step, label, "restored tree vs source", "verified")
            if step == "first":
                add(step, label, "throughput MB/s", "throughput_mb_s")
                ceil = self.ceiling_mb_s()
                if ceil:
                    for res in self.results["first"].values():
                        if "throughput_mb_s" in res:
                            res["pct_of_ceiling"] = 100 * res["throughput_mb_s"] / ceil
                    add(step, label, f"% of ceiling ({ceil:.0f} MB/s)", "pct_of_ceiling")
                add(step, label, "repo size MiB", "repo_bytes", 1 / (1 << 20))
                add(step, label, "local cache MiB", "cache_bytes", 1 / (1 << 20))
            if step == "tick":
                add(step, label, "repo size MiB", "repo_bytes", 1 / (1 << 20))
        if self.results["week"]:
            n = next((r.get("ticks") for r in self.results["week"].values() if r.get("ticks")), 0)
            lab = f"week: {n} ticks+backups"
            add("week", lab, "total wall s", "wall_s", first=True)
            add("week", lab, "mean wall s / backup", "mean_wall_s")
            add("week", lab, "total CPU s", "cpu_s")
            add("week", lab, "peak RSS MiB", "maxrss_kib", 1 / 1024)
            add("week", lab, "written MiB", "written_bytes", 1 / (1 << 20))
            add("week", lab, "repo size after MiB", "repo_bytes", 1 / (1 << 20))
            add("week", lab, "repo files after", "repo_files")
            add("week", lab, "local cache after MiB", "cache_bytes", 1 / (1 << 20))
        return "\n".join(rows)

    def footnotes(self) -> list[str]:
        """Call after table(): the errors it numbered, then warnings and notes."""
        out = [f"[{i + 1}] {e}" for i, e in enumerate(getattr(self, "errors", []))]
        for step in list(self.results):
            for name, res in self.results[step].items():
                for k in ("warning", "note"):
                    if k in res:
                        out.append(f"{step}/{name}: {res[k]}")
                if step == "restore_ws" and "variant" in res and "error" not in res:
                    out.append(f"restore_ws/{name}: {res['variant']}")
        return out


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(prog="benches/compare", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scales", default="small", help="comma list of: " + ", ".join(SCALES) + " (default: small)")
    p.add_argument("--tools", default="clawback,restic,borg,rustic",
                   help="comma list (default: clawback,restic,borg,rustic; rustic only if on PATH)")
    p.add_argument("--week-ticks", type=int, default=None,
                   help="ticks+backups in the week series (default 84 for small, 12 for large/smallfiles, 4 for --quick; 0 disables)")
    p.add_argument("--quick", action="store_true", help="smoke run: 100M/5k files, week-ticks 4, replaces --scales")
    p.add_argument("--keep", action="store_true", help="keep the work dir (corpus, repositories, logs)")
    p.add_argument("--workdir", type=Path, help="where to put corpus and repositories (default: a new dir in /tmp)")
    p.add_argument("--corpus", type=Path, help="use this existing OpenClaw home (must contain .openclaw; it is modified by ticks!)")
    p.add_argument("--real", type=Path, action="append", default=[], metavar="DIR",
                   help="copy this real folder into the generated workspace (repeatable): data we did not design")
    p.add_argument("--mix", action="store_true",
                   help="--real for ~/.cargo/registry/src and ~/.cache/clawback-openclaw (source text, node and npm packages)")
    p.add_argument("--builtin-corpus", action="store_true", help="use the built-in stand-in generator, not clawback-corpus")
    p.add_argument("--no-install", action="store_true", help="do not apt-get install missing tools")
    p.add_argument("--no-build", action="store_true", help="use the binaries in target/release as they are")
    p.add_argument("--no-drop-caches", action="store_true", help="do not drop the page cache between steps")
    p.add_argument("--no-verify", dest="verify", action="store_false", help="do not compare restored trees with the source")
    p.add_argument("--no-ceiling", action="store_true", help="do not run the ceiling binary")
    p.add_argument("--no-record", action="store_true", help="print only; do not touch RESULTS.md or results/")
    p.add_argument("--clawback-bin", help="use this clawback binary instead of target/release/clawback (implies no clawback build)")
    p.add_argument("--clawback-default-excludes", action="store_true",
                   help="let clawback leave out OpenClaw runtime files as it does by default (restores then differ from the source)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run the first backup and the full restore this many times, rotating the tools' order, "
                        "and report each tool's median (default 1)")
    p.add_argument("--step-timeout", type=float, default=3600, help="seconds before one step is killed (default 3600)")
    a = p.parse_args(argv)
    a.tools = [t.strip() for t in a.tools.split(",") if t.strip()]
    bad = [t for t in a.tools if t not in TOOL_CLASSES]
    if bad:
        p.error(f"unknown tool(s): {', '.join(bad)}; known: {', '.join(TOOL_CLASSES)}")
    a.scales = ["quick"] if a.quick else [s.strip() for s in a.scales.split(",") if s.strip()]
    bad = [s for s in a.scales if s not in SCALES]
    if bad:
        p.error(f"unknown scale(s): {', '.join(bad)}; known: {', '.join(SCALES)}")
    if a.corpus and len(a.scales) > 1:
        p.error("--corpus takes one scale")
    if a.mix:
        a.real += [Path.home() / ".cargo/registry/src", Path.home() / ".cache/clawback-openclaw"]
    for d in a.real:
        if not d.is_dir():
            p.error(f"--real {d}: not a folder")
    a.week_ticks_for = lambda scale: a.week_ticks if a.week_ticks is not None else SCALES[scale][1]
    return a


def main(argv: list[str]) -> int:
    a = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    global TIME_BIN
    setup_notes = ensure_packages(a.tools, not a.no_install)
    TIME_BIN = TIME_BIN or shutil.which("time", path="/usr/bin:/bin") or ""
    if not TIME_BIN:
        setup_notes.append("GNU time missing: peak RSS includes this script's own RSS as a floor")

    build_errors: dict[str, str | None] = {}
    if not a.no_build:
        # Separately, so that a broken clawback does not keep the corpus or the ceiling from building.
        if "clawback" in a.tools and not a.clawback_bin:
            build_errors["clawback"] = cargo_build(["-p", "clawback-cli"], "clawback")
        if not a.builtin_corpus and not a.corpus:
            build_errors["corpus"] = cargo_build(["-p", "clawback-corpus"], "clawback-corpus")
        if not a.no_ceiling:
            build_errors["ceiling"] = cargo_build(["-p", "clawback-benches", "--bin", "ceiling", "--no-default-features"], "ceiling")
        for k, v in build_errors.items():
            if v:
                log(f"build of {k} failed: {v}")
    builtin = a.builtin_corpus or (not a.corpus and not (RELEASE / "clawback-corpus").exists())
    if builtin and not a.builtin_corpus and not a.corpus:
        setup_notes.append("clawback-corpus not available" + (f" ({build_errors.get('corpus')})" if build_errors.get("corpus") else "")
                           + ": used the built-in stand-in corpus, NOT the real generator")
    elif build_errors.get("corpus"):
        setup_notes.append(f"clawback-corpus build failed ({build_errors['corpus']}); used the existing binary")

    cache = Cache(not a.no_drop_caches)
    made_work = a.workdir is None
    work_root = Path(tempfile.mkdtemp(prefix="clawback-compare-", dir="/tmp")) if made_work else a.workdir.resolve()
    work_root.mkdir(parents=True, exist_ok=True)
    log(f"work dir {work_root}; {cache.label}")
    global BIN
    BIN = work_root / "bin"
    BIN.mkdir(exist_ok=True)
    for name in ("clawback", "clawback-corpus", "ceiling"):
        if (RELEASE / name).exists():
            shutil.copy2(RELEASE / name, BIN / name)
    status = 0
    try:
        for scale in a.scales:
            status |= run_scale(a, scale, work_root / scale, builtin, build_errors, setup_notes, cache)
    finally:
        if a.keep:
            log(f"kept {work_root}")
        elif made_work:
            rmtree(work_root)
        else:
            for scale in a.scales:
                rmtree(work_root / scale)
    return status


def without_machine_paths(text: str, work: Path, tools: list) -> str:
    """Committed results name no folder of this machine: the work dir, the tools' folders, home."""
    for t in tools:
        if t.exe:
            text = text.replace(str(Path(t.exe).parent) + "/", "")
    # (borg names archived paths without their leading slash.)
    text = text.replace(str(work), "<work>").replace(str(work).lstrip("/"), "<work>")
    return text.replace(str(Path.home()), "~")


def run_scale(a, scale: str, work: Path, builtin: bool, build_errors: dict, setup_notes: list[str], cache: Cache) -> int:
    rmtree(work)
    work.mkdir(parents=True)
    tools: list[Tool] = []
    for name in a.tools:
        t = TOOL_CLASSES[name](name=name, work=work)
        if name == "clawback":
            t.build_error = build_errors.get("clawback")
            t.bin_override = a.clawback_bin
            t.keep_default_excludes = a.clawback_default_excludes
        t.setup()
        if name == "rustic" and t.error:
            log("rustic not on PATH: skipped")
            if not any(n.startswith("rustic") for n in setup_notes):
                setup_notes.append("rustic: not on PATH, not compared (this script does not build it)")
            continue
        tools.append(t)

    if a.corpus:
        home = a.corpus.resolve()
        corpus = Corpus(home, builtin=a.builtin_corpus)
        if not corpus.state.is_dir():
            raise SystemExit(f"--corpus {home}: no .openclaw inside")
        gen_wall = 0.0
    else:
        home = work / "home"
        corpus = Corpus(home, builtin)
        log(f"[{scale}] generating corpus ({'built-in' if builtin else 'clawback-corpus'} {' '.join(SCALES[scale][0])})")
        g = corpus.generate(SCALES[scale][0])
        if g.rc != 0:
            raise SystemExit(f"corpus generation failed: {first_line(g.stderr)}")
        if not corpus.state.is_dir() and not builtin:
            # A generator that exits 0 but makes nothing (a placeholder binary): use the stand-in.
            log(f"[{scale}] clawback-corpus made no {corpus.state}; using the built-in stand-in corpus")
            setup_notes.append("clawback-corpus produced nothing: used the built-in stand-in corpus, NOT the real generator")
            builtin = corpus.builtin = True
            rmtree(home)
            g = corpus.generate(SCALES[scale][0])
        gen_wall = g.wall
    real_notes = []
    for i, d in enumerate(a.real):
        # Data nobody here designed: copied into the workspace as a project, so every tool backs it up.
        dest = corpus.workspace / "projects" / f"real-{i}-{d.name}"
        rmtree(dest)
        shutil.copytree(d, dest, symlinks=True, ignore_dangling_symlinks=True)
        rb, rf = tree_size(dest)
        real_notes.append(f"{rf} files, {mib(rb):.0f} MiB copied from `{d.name}`")
        log(f"[{scale}] real data: {real_notes[-1]}")
    nbytes, nfiles = tree_size(corpus.state)
    ws_bytes, ws_files = tree_size(corpus.workspace)
    log(f"[{scale}] corpus: {nfiles} files, {mib(nbytes):.1f} MiB (workspace {ws_files} files, {mib(ws_bytes):.1f} MiB), "
        f"generated in {gen_wall:.1f}s")

    load_before = loadavg()
    bench = Bench(a, scale, work, tools, corpus, cache)
    bench.corpus_info = {"bytes": nbytes, "files": nfiles, "workspace_bytes": ws_bytes, "workspace_files": ws_files,
                         "generator": "built-in stand-in" if builtin else "clawback-corpus",
                         "args": SCALES[scale][0] if not a.corpus else [str(a.corpus)]}
    started = dt.datetime.now()
    bench.run()
    load_after = loadavg()
    # The machine's own sequential write speed for the corpus's bytes: what a restore could reach.
    dd_file = work / "dd.tmp"
    count = max(1, nbytes >> 20)
    cache.drop()
    d = run_measured(["dd", "if=/dev/zero", f"of={dd_file}", "bs=1M", f"count={count}", "conv=fdatasync"],
                     logdir=work, name="dd")
    dd_file.unlink(missing_ok=True)
    bench.corpus_info["dd_write_s"] = d.wall if d.rc == 0 else None

    machine = machine_info()
    date = started.strftime("%Y-%m-%d")
    title = f"## {started.strftime('%Y-%m-%d %H:%M')} — scale `{scale}`" + (" (quick smoke run)" if scale == "quick" else "")
    lines = [title, ""]
    lines.append(f"- machine: {machine['nproc']} cores, {machine['mem_gib']} GiB, {machine['cpu']}, Linux {machine['kernel']}; "
                 f"load average {load_before:.2f} before, {load_after:.2f} after"
                 + (" (**other work was running: times are noisy**)" if max(load_before, load_after) > 0.7 else ""))
    lines.append(f"- corpus: {bench.corpus_info['generator']} `{' '.join(bench.corpus_info['args'])}`: {nfiles} files, "
                 f"{mib(nbytes):.1f} MiB (workspace {ws_files} files, {mib(ws_bytes):.1f} MiB); "
                 f"backed up: the state dir `.openclaw`"
                 + (f"; plus real data in the workspace: {'; '.join(real_notes)}" if real_notes else ""))
    lines.append(f"- {cache.label}")
    if a.rounds > 1:
        spread = []
        for step in ("first", "restore_all"):
            for name, res in bench.results[step].items():
                if res.get("rounds_wall_s"):
                    spread.append(f"{step} {name} " + "/".join(f"{w:.1f}" for w in res["rounds_wall_s"]))
        lines.append(f"- first backup and full restore: the median of {a.rounds} rounds, the tools' order rotated each "
                     "round (wall s per round: " + "; ".join(spread) + ")")
    if bench.corpus_info.get("dd_write_s"):
        w = bench.corpus_info["dd_write_s"]
        lines.append(f"- disk: one sequential write of the corpus's {mib(nbytes):.0f} MiB (`dd conv=fdatasync`) takes "
                     f"{w:.2f} s ({mib(nbytes) / w:.0f} MiB/s): the floor of a full restore")
    for t in tools:
        if t.error:
            lines.append(f"- {t.name}: **not run**: {t.error}")
        else:
            lines.append(f"- {t.name}: {t.version}; compression {t.compression}; password KDF {t.kdf}"
                         + ("; " + "; ".join(t.notes) if t.notes else ""))
    lines.append("- KDFs differ (each tool's default, not tunable alike); every command pays its KDF once, which weighs on "
                 "the small steps, and its memory sets the floor of peak RSS.")
    if bench.ceiling and "runs" in bench.ceiling:
        parts = [f"{r['mode']} ({r['threads']} thr) {r['total_mb_s']:.0f} MB/s" for r in bench.ceiling["runs"]]
        st = next((r["stage_mb_s"] for r in bench.ceiling["runs"] if r["mode"] == "single"), None)
        stages = (", per core: " + ", ".join(f"{k} {v:.0f}" for k, v in st.items() if v)) if st else ""
        pr = bench.ceiling.get("params", {})
        kib = "/".join(f"{pr.get(k, 0) // 1024}K" for k in ("min", "avg", "max"))
        lines.append(f"- ceiling (bare fastcdc {kib} + keyed BLAKE3 + zstd {pr.get('zstd_level', '?')} + AES-256-GCM-SIV, "
                     "no repo): " + "; ".join(parts) + stages + " MB/s")
    elif bench.ceiling:
        lines.append(f"- ceiling: failed: {bench.ceiling.get('error')}")
    for n in setup_notes:
        lines.append(f"- note: {n}")
    lines += ["", bench.table(), ""]
    foot = bench.footnotes()
    if foot:
        lines += ["Notes ([n]: why a step failed; ⚠: a cell with a warning):", ""] + [f"- {f}" for f in foot] + [""]
    if a.verify:
        lines.append("`restored tree vs source`: every file's content, symlink and path compared; SQLite databases by "
                     "their content (WAL applied), so a consistent image restored in place of db+wal counts as the same.")
    lines.append("Lower is better everywhere except throughput and % of ceiling. `written` = growth of the repository "
                 "directory (apparent sizes); `local cache` = the tool's cache/config dirs outside the repository. Ratio column: clawback ÷ restic.")
    md = "\n".join(lines) + "\n"
    print(md)

    raw = {"date": started.isoformat(timespec="seconds"), "scale": scale, "machine": machine,
           "load_before": load_before, "load_after": load_after, "cache": cache.label, "corpus": bench.corpus_info,
           "tools": {t.name: {"version": t.version, "compression": t.compression, "kdf": t.kdf, "error": t.error,
                              "notes": t.notes} for t in tools},
           "ceiling": bench.ceiling, "setup_notes": setup_notes, "results": bench.results}
    if not a.no_record:
        (BENCHES / "results").mkdir(exist_ok=True)
        out = BENCHES / "results" / f"{date}-{scale}.json"
        i = 2
        while out.exists():
            out = BENCHES / "results" / f"{date}-{scale}-{i}.json"
            i += 1
        out.write_text(without_machine_paths(json.dumps(raw, indent=1, default=str), work, tools) + "\n")
        res_md = BENCHES / "RESULTS.md"
        if not res_md.exists():
            res_md.write_text("# Side-by-side results\n\nAppended by `benches/compare`; newest last. Raw numbers in `results/`.\n\n")
        with open(res_md, "a") as f:
            f.write(md + f"\nRaw: `results/{out.name}`\n\n")
        log(f"appended to {res_md}, raw numbers in {out}")
    if a.keep:
        (work / "raw.json").write_text(json.dumps(raw, indent=1, default=str))
    failed = any("error" in r for step in bench.results.values() for r in step.values())
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)
