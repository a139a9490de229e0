#!/usr/bin/env python3
"""Which B-trees a SQLite database's WAL pages belong to, per kind of commit.

Usage: scripts/wal-pages.py DIR [--last N]

DIR holds a copy of a running warbler's database file and its WAL, taken together while the
process was stopped, so that the two agree:

    kill -STOP $pid; cp warbler.db warbler.db-wal DIR/; kill -CONT $pid

Every frame of the WAL's current generation is one page written by a commit; the last frame
of each commit carries the database's size. A page's owner is read with SQLite's `dbstat`
from the copy as it is now, so pages freed and reused since they were written count under
their new owner (`--last N` keeps only the last N commits, whose pages moved least). Commits
are sorted by what they touch: the message writer's groups are the only ones that append to
`messages_by_account_from`, webhook settlements the only ones that write callback attempts,
the dispatcher's outcomes the only ones that set carrier ids.

Prints, per kind: commits, frames, frames per commit, and the B-trees most written. With
`--pages INDEX`, also each of the last commits that wrote INDEX: the pages it wrote there, as
`dbstat` path (`/` the root, `/008/` its ninth child, `/008/024/` a leaf under that) and the
number of cells the page held in that commit.
"""

import argparse
import collections
import os
import shutil
import sqlite3
import struct
import tempfile


def frames_of(wal_path):
    """(page number, database size if the frame ends a commit else 0) of each valid frame."""
    with open(wal_path, "rb") as wal:
        data = wal.read()
    if len(data) < 32:
        return [], 0
    page_size = struct.unpack(">I", data[8:12])[0]
    salts = struct.unpack(">2I", data[16:24])
    frames = []
    offset = 32
    while offset + 24 + page_size <= len(data):
        page, commit, salt1, salt2 = struct.unpack(">4I", data[offset : offset + 16])
        # Frames of an earlier generation (before the WAL restarted) carry other salts.
        if (salt1, salt2) != salts:
            break
        frames.append((page, commit, offset + 24))
        offset += 24 + page_size
    return frames, page_size, data


def cells_in(data, at, page):
    """The cell count in a B-tree page's header (page 1's header follows the file header)."""
    header = at + (100 if page == 1 else 0)
    return struct.unpack(">H", data[header + 3 : header + 5])[0]


def owners_of(directory, database, wal):
    """Page number -> table or index name, from a scratch copy (SQLite rebuilds its index of
    the WAL there, leaving DIR as it was)."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copy(database, os.path.join(scratch, "w.db"))
        shutil.copy(wal, os.path.join(scratch, "w.db-wal"))
        connection = sqlite3.connect(os.path.join(scratch, "w.db"))
        owners, paths = {}, {}
        for name, path, page in connection.execute("SELECT name, path, pageno FROM dbstat"):
            owners[page] = name
            paths[page] = path
        connection.close()
    return owners, paths


def kind_of(names):
    if "messages_by_account_from" in names:
        return "message writer (new messages)"
    if "console_callback_attempts" in names:
        return "webhook settlements"
    if "messages_by_carrier_id" in names:
        return "dispatcher outcomes"
    if "messages" in names:
        return "other writes to messages (receipts applied, ...)"
    return "other: " + ", ".join(sorted(names))[:70]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory")
    parser.add_argument("--last", type=int, default=0, help="only the last N commits")
    parser.add_argument("--pages", metavar="INDEX", help="the pages the last commits wrote in INDEX")
    args = parser.parse_args()
    names = sorted(os.listdir(args.directory))
    databases = [os.path.join(args.directory, n) for n in names if n.endswith(".db")]
    if not databases or not os.path.exists(databases[0] + "-wal"):
        raise SystemExit(f"{args.directory} holds no database file (*.db) with its WAL (*.db-wal)")
    database = databases[0]
    wal = database + "-wal"
    frames, page_size, data = frames_of(wal)
    owners, paths = owners_of(args.directory, database, wal)

    commits, current, written, written_by_commit = [], [], [], []
    for page, size, at in frames:
        current.append(page)
        written.append((page, at))
        if size:
            written_by_commit.append(written)
            written = []
            commits.append(current)
            current = []
    if args.last:
        commits = commits[-args.last :]
        written_by_commit = written_by_commit[-args.last :]
    print(f"{len(frames)} frames of {page_size} bytes, {len(commits)} commits counted")

    def owner(page):
        return owners.get(page, "(freed since)")

    by_kind = collections.defaultdict(list)
    for commit in commits:
        by_kind[kind_of({owner(p) for p in commit})].append(commit)
    for kind, members in sorted(by_kind.items(), key=lambda kv: -sum(map(len, kv[1]))):
        pages = sum(map(len, members))
        print(f"{kind}: {len(members)} commits, {pages} frames, {pages / len(members):.1f} per commit")
        counts = collections.Counter(owner(p) for commit in members for p in commit)
        for name, count in counts.most_common(10):
            # Page 1 belongs to sqlite_schema: a commit writes it when the file's size or its
            # free-page list changes.
            print(f"    {name:44s} {count:7d} {count / len(members):6.2f} per commit")
    if args.pages:
        print(f"pages written in {args.pages} (dbstat path: cells), the last commits that wrote it:")
        shown = 0
        for written in reversed(written_by_commit):
            mine = [(p, at) for p, at in written if owners.get(p) == args.pages]
            if not mine:
                continue
            print(f"  commit of {len(written)} frames: " + ", ".join(
                f"{paths.get(p)}: {cells_in(data, at, p)}" for p, at in mine))
            shown += 1
            if shown == 8:
                break


if __name__ == "__main__":
    main()
